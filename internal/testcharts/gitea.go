package testcharts

import (
	"fmt"
	"path/filepath"
	"testing"

	giteaserver "hl.dev/hl/internal/gitea/testserver"
)

// gitea is a small content stand-in for the Gitea chart: the objects other
// parts of a rendered repo refer to by name, named as the upstream chart
// (gitea.com/gitea/helm-gitea) names them — fullname is the release name
// when it contains "gitea", else <release>-gitea:
//
//   - Service <fullname>-http, port service.http.port (3000) at
//     service.http.clusterIP when set, port name
//     http, selecting app.kubernetes.io/name=gitea and
//     app.kubernetes.io/instance=<release> (what the wrapper's
//     ServiceMonitor selects);
//   - Service <fullname>-ssh, port service.ssh.port (22) to the rootless
//     image's SSH port 2222;
//   - Deployment <fullname>, one container gitea from
//     image.registry/image.repository:(image.tag or appVersion)-rootless
//     with replicaCount, podAnnotations, strategy, podSecurityContext,
//     containerSecurityContext and resources;
//   - PersistentVolumeClaim persistence.claimName (gitea-shared-storage)
//     when persistence.enabled;
//   - Ingress <fullname> from ingress.{className,annotations,hosts,tls}
//     when ingress.enabled.
//
// Nothing of Gitea's configuration (gitea.config, gitea.admin, oauth,
// metrics, additionalConfigFromEnvs) is rendered: no Secret with app.ini,
// no init containers. appVersion is the Gitea the tests run
// (internal/gitea/testserver), since no pod of this chart ever runs here.
func gitea(t testing.TB, c *Chart, dir string) (Kind, string) {
	t.Helper()
	requireVersion(t, c, "12.4.0")
	files := map[string]string{
		"Chart.yaml": fmt.Sprintf(`apiVersion: v2
name: gitea
version: %s
appVersion: %q
description: hl test stand-in for the gitea chart (Services, Deployment, PVC, Ingress named as upstream; no Gitea configuration)
`, c.Version, giteaserver.Version),
		"values.yaml":               giteaValues,
		"templates/_helpers.tpl":    giteaHelpers,
		"templates/http-svc.yaml":   giteaHTTPService,
		"templates/ssh-svc.yaml":    giteaSSHService,
		"templates/deployment.yaml": giteaDeployment,
		"templates/pvc.yaml":        giteaPVC,
		"templates/ingress.yaml":    giteaIngress,
	}
	for name, body := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), body)
	}
	return ContentStandIn, "written in internal/testcharts: Services <release>-http (3000) and -ssh, Deployment, PVC, Ingress"
}

const giteaValues = `image:
  registry: docker.gitea.com
  repository: gitea
  # Defaults to the chart's appVersion.
  tag: ""
  rootless: true
replicaCount: 1
podAnnotations: {}
strategy:
  type: RollingUpdate
podSecurityContext:
  fsGroup: 1000
containerSecurityContext: {}
resources: {}
service:
  http:
    type: ClusterIP
    port: 3000
  ssh:
    type: ClusterIP
    port: 22
persistence:
  enabled: true
  claimName: gitea-shared-storage
  size: 10Gi
  accessModes: [ReadWriteOnce]
  storageClass: ""
ingress:
  enabled: false
  className: ""
  annotations: {}
  hosts: []
  tls: []
`

const giteaHelpers = `{{- define "gitea.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gitea.selectorLabels" -}}
app.kubernetes.io/name: gitea
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gitea.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app: gitea
{{ include "gitea.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
`

const giteaHTTPService = `apiVersion: v1
kind: Service
metadata:
  name: {{ include "gitea.fullname" . }}-http
  labels:
    {{- include "gitea.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.http.type }}
  {{- with .Values.service.http.clusterIP }}
  clusterIP: {{ . }}
  {{- end }}
  ports:
    - name: http
      port: {{ .Values.service.http.port }}
      targetPort: http
  selector:
    {{- include "gitea.selectorLabels" . | nindent 4 }}
`

const giteaSSHService = `apiVersion: v1
kind: Service
metadata:
  name: {{ include "gitea.fullname" . }}-ssh
  labels:
    {{- include "gitea.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.ssh.type }}
  ports:
    - name: ssh
      port: {{ .Values.service.ssh.port }}
      targetPort: ssh
      protocol: TCP
  selector:
    {{- include "gitea.selectorLabels" . | nindent 4 }}
`

const giteaDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "gitea.fullname" . }}
  labels:
    {{- include "gitea.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  strategy:
    {{- toYaml .Values.strategy | nindent 4 }}
  selector:
    matchLabels:
      {{- include "gitea.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "gitea.labels" . | nindent 8 }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: gitea
          image: "{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{ if .Values.image.rootless }}-rootless{{ end }}"
          ports:
            - name: http
              containerPort: 3000
            - name: ssh
              containerPort: 2222
          securityContext:
            {{- toYaml .Values.containerSecurityContext | nindent 12 }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /data
      volumes:
        - name: data
          {{- if .Values.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ .Values.persistence.claimName }}
          {{- else }}
          emptyDir: {}
          {{- end }}
`

const giteaPVC = `{{- if .Values.persistence.enabled }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .Values.persistence.claimName }}
  annotations:
    helm.sh/resource-policy: keep
spec:
  accessModes:
    {{- toYaml .Values.persistence.accessModes | nindent 4 }}
  {{- with .Values.persistence.storageClass }}
  storageClassName: {{ . }}
  {{- end }}
  resources:
    requests:
      storage: {{ .Values.persistence.size }}
{{- end }}
`

const giteaIngress = `{{- if .Values.ingress.enabled }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "gitea.fullname" . }}
  labels:
    {{- include "gitea.labels" . | nindent 4 }}
  {{- with .Values.ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .Values.ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with .Values.ingress.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range .Values.ingress.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ include "gitea.fullname" $ }}-http
                port:
                  number: {{ $.Values.service.http.port }}
          {{- end }}
    {{- end }}
{{- end }}
`
