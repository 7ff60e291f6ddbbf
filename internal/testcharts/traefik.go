package testcharts

import (
	"path/filepath"
	"testing"
)

// Where the stand-in's CRDs come from: the traefik.io CRDs of the Traefik
// release chart 41.3.0 installs (appVersion v3.7.11), as that release's
// module publishes them in one file.
const (
	traefikModule     = "github.com/traefik/traefik/v3"
	traefikVersion    = "v3.7.11"
	traefikCRDFile    = "docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml"
	traefikChartPin   = "41.3.0"
	traefikAppVersion = "v3.7.11"
)

// traefik is a content stand-in for Traefik's chart (traefik/traefik-helm-chart,
// chart traefik 41.3.0, Traefik v3.7.11): the objects that chart renders
// for the values hl sets, named and labelled as the chart does (fullname
// is the release name when it contains "traefik", else
// <release>-traefik; selector labels app.kubernetes.io/name traefik and
// app.kubernetes.io/instance <release>-<namespace>):
//
//   - crds/: the ten traefik.io CRDs (IngressRoute, IngressRouteTCP,
//     IngressRouteUDP, Middleware, MiddlewareTCP, ServersTransport,
//     ServersTransportTCP, TLSOption, TLSStore, TraefikService) from the
//     module's kubernetes-crd-definition-v1.yml, the definitions the
//     chart's crds/ folder holds for that release, so the Middlewares and
//     the IngressRouteTCP hl renders are checked and applied;
//   - ServiceAccount <fullname>, ClusterRole and ClusterRoleBinding
//     <fullname>-<namespace> with the chart's rules for the Ingress and
//     CRD providers;
//   - Deployment <fullname>: deployment.replicas, one container traefik
//     (image docker.io/traefik:<appVersion>) with the chart's entry point,
//     provider and metrics arguments derived from ports, providers and
//     metrics.prometheus, a container port per entry point, resources and
//     the chart's default security contexts;
//   - Service <fullname> (service.annotations, service.spec, a port per
//     entry point with expose.default, exposedPort to the named target
//     port); with metrics.prometheus.service.enabled, Service
//     <fullname>-metrics; with .serviceMonitor.enabled, ServiceMonitor
//     <fullname> (failing, as the chart does, when the cluster does not
//     serve monitoring.coreos.com/v1);
//   - IngressClass ingressClass.name (controller
//     traefik.io/ingress-controller, the is-default-class annotation);
//   - PodDisruptionBudget <fullname> with podDisruptionBudget.enabled.
//
// Not rendered, because hl leaves them off or at the chart's defaults
// and nothing refers to them: Traefik Hub's CRDs (hub.traefik.io, in the
// chart's crds/ too), the dashboard IngressRoute, Gateway API objects,
// HPA, PVC, extra objects. The chart's values schema is not enforced
// here; hl's values were checked against it once, when this was written,
// by rendering the real chart 41.3.0 with the full fixture's values (the
// same kinds, names, labels, container arguments and ports as below, but
// for the PodDisruptionBudget's API version, policy/v1 here).
func traefik(t testing.TB, c *Chart, dir string) (Kind, string) {
	t.Helper()
	requireVersion(t, c, traefikChartPin)
	files := map[string]string{
		"Chart.yaml": `apiVersion: v2
name: traefik
version: ` + traefikChartPin + `
appVersion: ` + traefikAppVersion + `
description: hl test stand-in for the traefik chart (Deployment, Services, IngressClass, RBAC, traefik.io CRDs as upstream renders them for hl's values)
`,
		"values.yaml":                   traefikValues,
		"templates/_helpers.tpl":        traefikHelpers,
		"templates/rbac.yaml":           traefikRBAC,
		"templates/deployment.yaml":     traefikDeployment,
		"templates/service.yaml":        traefikService,
		"templates/servicemonitor.yaml": traefikServiceMonitor,
		"templates/ingressclass.yaml":   traefikIngressClass,
		"templates/pdb.yaml":            traefikPDB,
	}
	for name, body := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), body)
	}
	src := filepath.Join(moduleDir(t, traefikModule, traefikVersion), filepath.FromSlash(traefikCRDFile))
	copyFile(t, src, filepath.Join(dir, "crds", "traefik.io.yaml"))
	return ContentStandIn, "written in internal/testcharts: Deployment, Services, IngressClass, RBAC as chart " + traefikChartPin + " names them; crds/ from " + traefikModule + "@" + traefikVersion + " " + traefikCRDFile
}

// The chart's defaults for what the templates read.
const traefikValues = `deployment:
  replicas: 1
podDisruptionBudget:
  enabled: false
  maxUnavailable:
  minAvailable:
ingressClass:
  enabled: true
  isDefaultClass: true
  name: ""
providers:
  kubernetesCRD:
    enabled: true
    allowEmptyServices: true
  kubernetesIngress:
    enabled: true
    allowEmptyServices: true
    publishedService:
      enabled: true
ports:
  traefik:
    port: 8080
    expose:
      default: false
    exposedPort: 8080
    protocol: TCP
  web:
    port: 8000
    expose:
      default: true
    exposedPort: 80
    protocol: TCP
    http:
      redirections:
        entryPoint: {}
  websecure:
    port: 8443
    expose:
      default: true
    exposedPort: 443
    protocol: TCP
    http:
      tls:
        enabled: true
    transport:
      respondingTimeouts:
        readTimeout:
  metrics:
    port: 9100
    expose:
      default: false
    exposedPort: 9100
    protocol: TCP
service:
  enabled: true
  annotations: {}
  labels: {}
  spec:
    type: LoadBalancer
metrics:
  prometheus:
    entryPoint: metrics
    addEntryPointsLabels:
    addRoutersLabels:
    addServicesLabels:
    service:
      enabled: false
    serviceMonitor:
      enabled: false
resources: {}
`

const traefikHelpers = `{{- define "traefik.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "traefik.selectorLabels" -}}
app.kubernetes.io/name: traefik
app.kubernetes.io/instance: {{ printf "%s-%s" .Release.Name .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "traefik.labels" -}}
{{ include "traefik.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "traefik.clusterRoleName" -}}
{{- printf "%s-%s" (include "traefik.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}
`

const traefikRBAC = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "traefik.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "traefik.clusterRoleName" . }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: [configmaps, nodes, services]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
  - apiGroups: [""]
    resources: [pods]
    verbs: [get]
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get, list, watch]
  - apiGroups: [extensions, networking.k8s.io]
    resources: [ingressclasses, ingresses]
    verbs: [get, list, watch]
  - apiGroups: [extensions, networking.k8s.io]
    resources: [ingresses/status]
    verbs: [update]
  - apiGroups: [""]
    resources: [namespaces]
    verbs: [list, watch]
  - apiGroups: [traefik.io]
    resources: [ingressroutes, ingressroutetcps, ingressrouteudps, middlewares, middlewaretcps, serverstransports, serverstransporttcps, tlsoptions, tlsstores, traefikservices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ include "traefik.clusterRoleName" . }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ include "traefik.clusterRoleName" . }}
subjects:
  - kind: ServiceAccount
    name: {{ include "traefik.fullname" . }}
    namespace: {{ .Release.Namespace }}
`

const traefikDeployment = `{{- $p := .Values.ports -}}
{{- $prom := .Values.metrics.prometheus -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "traefik.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.deployment.replicas }}
  selector:
    matchLabels:
      {{- include "traefik.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "traefik.labels" . | nindent 8 }}
    spec:
      serviceAccountName: {{ include "traefik.fullname" . }}
      automountServiceAccountToken: true
      terminationGracePeriodSeconds: 60
      securityContext:
        runAsGroup: 65532
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: traefik
          image: docker.io/traefik:{{ .Chart.AppVersion }}
          imagePullPolicy: IfNotPresent
          args:
            {{- range $name, $port := $p }}
            - --entryPoints.{{ $name }}.address=:{{ $port.port }}/{{ lower ($port.protocol | default "TCP") }}
            {{- end }}
            - --api.dashboard=true
            - --ping=true
            {{- if $prom }}
            - --metrics.prometheus=true
            - --metrics.prometheus.entrypoint={{ $prom.entryPoint }}
            {{- if not (kindIs "invalid" $prom.addEntryPointsLabels) }}
            - --metrics.prometheus.addEntryPointsLabels={{ $prom.addEntryPointsLabels }}
            {{- end }}
            {{- if not (kindIs "invalid" $prom.addRoutersLabels) }}
            - --metrics.prometheus.addRoutersLabels={{ $prom.addRoutersLabels }}
            {{- end }}
            {{- if not (kindIs "invalid" $prom.addServicesLabels) }}
            - --metrics.prometheus.addServicesLabels={{ $prom.addServicesLabels }}
            {{- end }}
            {{- end }}
            {{- if .Values.providers.kubernetesCRD.enabled }}
            - --providers.kubernetescrd
            - --providers.kubernetescrd.allowEmptyServices={{ .Values.providers.kubernetesCRD.allowEmptyServices }}
            {{- end }}
            {{- if .Values.providers.kubernetesIngress.enabled }}
            - --providers.kubernetesingress
            - --providers.kubernetesingress.allowEmptyServices={{ .Values.providers.kubernetesIngress.allowEmptyServices }}
            {{- if .Values.providers.kubernetesIngress.publishedService.enabled }}
            - --providers.kubernetesingress.ingressendpoint.publishedservice={{ .Release.Namespace }}/{{ include "traefik.fullname" . }}
            {{- end }}
            {{- end }}
            {{- range $name, $port := $p }}
            {{- with (($port.http).redirections).entryPoint }}
            {{- if .to }}
            - --entryPoints.{{ $name }}.http.redirections.entryPoint.to=:{{ (index $p .to).exposedPort }}
            - --entryPoints.{{ $name }}.http.redirections.entryPoint.scheme={{ .scheme | default "https" }}
            - --entryPoints.{{ $name }}.http.redirections.entryPoint.permanent={{ .permanent | default false }}
            {{- end }}
            {{- end }}
            {{- if ((($port.http).tls).enabled) }}
            - --entryPoints.{{ $name }}.http.tls=true
            {{- end }}
            {{- with ((($port.transport).respondingTimeouts).readTimeout) }}
            - --entryPoints.{{ $name }}.transport.respondingTimeouts.readTimeout={{ . }}
            {{- end }}
            {{- end }}
            - --log.level=INFO
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: USER
              value: traefik
          ports:
            {{- range $name, $port := $p }}
            - name: {{ $name }}
              containerPort: {{ $port.port }}
              protocol: {{ $port.protocol | default "TCP" }}
            {{- end }}
          readinessProbe:
            httpGet:
              path: /ping
              port: {{ $p.traefik.port }}
              scheme: HTTP
            failureThreshold: 1
            initialDelaySeconds: 2
            periodSeconds: 10
            timeoutSeconds: 2
          livenessProbe:
            httpGet:
              path: /ping
              port: {{ $p.traefik.port }}
              scheme: HTTP
            failureThreshold: 3
            initialDelaySeconds: 2
            periodSeconds: 10
            timeoutSeconds: 2
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: [ALL]
            readOnlyRootFilesystem: true
          volumeMounts:
            - name: data
              mountPath: /data
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: data
          emptyDir: {}
        - name: tmp
          emptyDir: {}
`

const traefikService = `{{- if .Values.service.enabled }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "traefik.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
    {{- with .Values.service.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .Values.service.spec }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  selector:
    {{- include "traefik.selectorLabels" . | nindent 4 }}
  ports:
    {{- range $name, $port := .Values.ports }}
    {{- if ($port.expose).default }}
    - name: {{ $name }}
      port: {{ $port.exposedPort }}
      targetPort: {{ $name }}
      protocol: {{ $port.protocol | default "TCP" }}
    {{- end }}
    {{- end }}
{{- end }}
{{- if ((.Values.metrics.prometheus).service).enabled }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "traefik.fullname" . }}-metrics
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
    app.kubernetes.io/component: metrics
spec:
  type: ClusterIP
  selector:
    {{- include "traefik.selectorLabels" . | nindent 4 }}
  ports:
    - name: metrics
      port: {{ .Values.ports.metrics.exposedPort }}
      targetPort: metrics
      protocol: TCP
{{- end }}
`

const traefikServiceMonitor = `{{- if ((.Values.metrics.prometheus).serviceMonitor).enabled }}
{{- if not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}
{{- fail "ERROR: You have to deploy monitoring.coreos.com/v1 first" }}
{{- end }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "traefik.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
    {{- if .Values.metrics.prometheus.service.enabled }}
    app.kubernetes.io/component: metrics
    {{- end }}
spec:
  jobLabel: {{ .Release.Name }}
  endpoints:
    - targetPort: metrics
      path: /{{ .Values.metrics.prometheus.entryPoint }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  selector:
    matchLabels:
      {{- include "traefik.selectorLabels" . | nindent 6 }}
      {{- if .Values.metrics.prometheus.service.enabled }}
      app.kubernetes.io/component: metrics
      {{- end }}
{{- end }}
`

const traefikIngressClass = `{{- if .Values.ingressClass.enabled }}
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: {{ .Values.ingressClass.name | default (include "traefik.fullname" .) }}
  annotations:
    ingressclass.kubernetes.io/is-default-class: {{ .Values.ingressClass.isDefaultClass | quote }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
spec:
  controller: traefik.io/ingress-controller
{{- end }}
`

const traefikPDB = `{{- if .Values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "traefik.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "traefik.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "traefik.selectorLabels" . | nindent 6 }}
  {{- with .Values.podDisruptionBudget.maxUnavailable }}
  maxUnavailable: {{ . }}
  {{- end }}
  {{- with .Values.podDisruptionBudget.minAvailable }}
  minAvailable: {{ . }}
  {{- end }}
{{- end }}
`
