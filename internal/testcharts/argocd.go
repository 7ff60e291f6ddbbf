package testcharts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	argocdserver "hl.dev/hl/internal/argocd/testserver"
)

// ArgoCDModule is the Go module the argo-cd stand-in is built from.
const ArgoCDModule = "github.com/argoproj/argo-cd/v3"

// argoCDVersion is the Argo CD release the harness builds and runs, so
// the stand-in installs what the tests run.
const argoCDVersion = argocdserver.Version

// ArgoCDRelease is the only release name the argo-cd stand-in renders
// for: the name hl gives the install (bootstrap/ and the Application
// system/argocd), for which argo-helm's fullname is "argocd".
const ArgoCDRelease = "argocd"

func argoCD(t testing.TB, c *Chart, dir string) (Kind, string) {
	t.Helper()
	requireVersion(t, c, "9.1.3")
	version := "v" + argoCDVersion
	src := moduleDir(t, ArgoCDModule, version)
	install, err := os.ReadFile(filepath.Join(src, "manifests", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := BuildArgoCD(install, c.Version, version)
	if err != nil {
		t.Fatalf("argo-cd stand-in from %s@%s: %v", ArgoCDModule, version, err)
	}
	for name, body := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), body)
	}
	return ContentStandIn, ArgoCDModule + "@" + version + " manifests/install.yaml, values mapped as argo-helm maps them (see the package doc)"
}

// argoComponent is one Argo CD component: its key in the values, the
// workload and container names in install.yaml, and argo-helm's container
// name.
type argoComponent struct {
	key, workload, container, helmContainer string
	// guard is the values condition for every object of the component.
	guard string
}

var argoComponents = []argoComponent{
	{"controller", "argocd-application-controller", "argocd-application-controller", "application-controller", ""},
	{"applicationSet", "argocd-applicationset-controller", "argocd-applicationset-controller", "applicationset-controller", ""},
	{"dex", "argocd-dex-server", "dex", "dex-server", ".Values.dex.enabled"},
	{"notifications", "argocd-notifications-controller", "argocd-notifications-controller", "notifications-controller", ".Values.notifications.enabled"},
	{"redis", "argocd-redis", "redis", "redis", ".Values.redis.enabled"},
	{"repoServer", "argocd-repo-server", "argocd-repo-server", "repo-server", ""},
	{"server", "argocd-server", "argocd-server", "server", ""},
}

// componentOf finds the component an install.yaml object belongs to by
// the longest workload-name prefix of its name.
func componentOf(name string) (argoComponent, bool) {
	switch name {
	case "argocd-metrics":
		return argoComponents[0], true
	case "argocd-notifications-cm", "argocd-notifications-secret":
		return argoComponents[3], true
	}
	best := -1
	for i, c := range argoComponents {
		if (name == c.workload || strings.HasPrefix(name, c.workload+"-")) && (best < 0 || len(c.workload) > len(argoComponents[best].workload)) {
			best = i
		}
	}
	if best < 0 {
		return argoComponent{}, false
	}
	return argoComponents[best], true
}

// argoBuilder turns install.yaml objects into Helm templates. Static parts
// are marshalled YAML; where a value maps in, the object holds a marker
// string that emit replaces by template text.
type argoBuilder struct {
	chartVersion, appVersion string
	snippets                 []snippet
	files                    map[string]string
	// metricsName is the app.kubernetes.io/name label of each component's
	// metrics Service, by component key, for the ServiceMonitors.
	metricsName map[string]string
}

// snippet is the template text that replaces a marker line. key is the
// map key the marker is the value of, or "" for a list item; indent is the
// line's indentation.
type snippet func(indent int, key string) string

func (b *argoBuilder) mark(s snippet) string {
	b.snippets = append(b.snippets, s)
	return fmt.Sprintf("@@hl:%d@@", len(b.snippets)-1)
}

var markerLine = regexp.MustCompile(`^( *)(- )?(?:([^ '"][^:]*): )?'@@hl:([0-9]+)@@'$`)

// emit writes obj as templates/<file> under the guards (and-ed).
func (b *argoBuilder) emit(file string, obj map[string]any, guards ...string) error {
	y, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if bytes.Contains(y, []byte("{{")) {
		return fmt.Errorf("%s: install.yaml holds template delimiters; the stand-in cannot carry them verbatim", file)
	}
	var out strings.Builder
	lines := strings.Split(strings.TrimSuffix(string(y), "\n"), "\n")
	for i, line := range lines {
		if i > 0 {
			out.WriteByte('\n')
		}
		if !strings.Contains(line, "@@hl:") {
			out.WriteString(line)
			continue
		}
		m := markerLine.FindStringSubmatch(line)
		if m == nil || (m[2] != "" && m[3] != "") {
			return fmt.Errorf("%s: marker in an unsupported position: %q", file, line)
		}
		n, _ := strconv.Atoi(m[4])
		indent := len(m[1])
		if m[2] == "" && m[3] == "" {
			return fmt.Errorf("%s: marker without a key: %q", file, line)
		}
		out.WriteString(b.snippets[n](indent, m[3]))
	}
	b.add(file, out.String(), guards...)
	return nil
}

// add writes a template under the guards.
func (b *argoBuilder) add(file, body string, guards ...string) {
	var conds []string
	for _, g := range guards {
		if g != "" {
			conds = append(conds, "("+g+")")
		}
	}
	body = strings.TrimSuffix(body, "\n")
	switch len(conds) {
	case 0:
		body += "\n"
	case 1:
		body = "{{- if " + conds[0] + " }}\n" + body + "\n{{- end }}\n"
	default:
		body = "{{- if and " + strings.Join(conds, " ") + " }}\n" + body + "\n{{- end }}\n"
	}
	b.files["templates/"+file] = body
}

func pad(n int) string { return strings.Repeat(" ", n) }

// always is key: followed by the YAML of expr.
func always(expr string) snippet {
	return func(indent int, key string) string {
		return fmt.Sprintf("%s%s:\n{{- toYaml %s | nindent %d }}", pad(indent), key, expr, indent+2)
	}
}

// optional is key: followed by the YAML of expr, or nothing when expr is
// empty.
func optional(expr string) snippet {
	return func(indent int, key string) string {
		return fmt.Sprintf("{{- with %s }}\n%s%s:\n{{- toYaml . | nindent %d }}\n{{- end }}", expr, pad(indent), key, indent+2)
	}
}

// appended are the items of the list expr, appended where the marker item
// stands.
func appended(expr string) snippet {
	return func(indent int, _ string) string {
		return fmt.Sprintf("{{- with %s }}\n{{ toYaml . | indent %d }}\n{{- end }}", expr, indent)
	}
}

// scalar is key: text, text being template text.
func scalar(text string) snippet {
	return func(indent int, key string) string {
		return fmt.Sprintf("%s%s: %s", pad(indent), key, text)
	}
}

// raw is key: followed by template text producing the value's lines at
// indent+2 (body receives that indentation).
func raw(body func(indent int) string) snippet {
	return func(indent int, key string) string {
		return fmt.Sprintf("%s%s:%s", pad(indent), key, body(indent+2))
	}
}

// BuildArgoCD returns the files of the argo-cd stand-in chart (path →
// content) built from an Argo CD release's manifests/install.yaml:
// chartVersion is the catalog's, appVersion the release's (v3.2.11).
func BuildArgoCD(install []byte, chartVersion, appVersion string) (map[string]string, error) {
	objs, err := splitYAML(install)
	if err != nil {
		return nil, fmt.Errorf("install.yaml: %w", err)
	}
	b := &argoBuilder{chartVersion: chartVersion, appVersion: appVersion, files: map[string]string{}, metricsName: map[string]string{}}
	var cmData map[string]any
	seen := map[string]bool{}
	for _, o := range objs {
		kind, name := str(o, "kind"), str(mapAt(o, "metadata"), "name")
		if kind == "" || name == "" {
			return nil, errors.New("install.yaml: an object without kind or name")
		}
		seen[kind+"/"+name] = true
		if kind == "CustomResourceDefinition" {
			y, err := yaml.Marshal(o)
			if err != nil {
				return nil, err
			}
			b.files["crds/"+name+".yaml"] = string(y)
			continue
		}
		if kind == "ConfigMap" && name == "argocd-cm" {
			cmData = mapAt(o, "data")
		}
		if err := b.object(kind, name, o); err != nil {
			return nil, err
		}
	}
	// What the mapping relies on: a release whose install.yaml lost one of
	// these needs the stand-in revisited.
	var missing []string
	for _, want := range []string{
		"ConfigMap/argocd-cm", "ConfigMap/argocd-cmd-params-cm", "ConfigMap/argocd-rbac-cm", "Secret/argocd-secret",
		"Deployment/argocd-repo-server", "Deployment/argocd-server", "StatefulSet/argocd-application-controller",
		"Deployment/argocd-applicationset-controller", "Deployment/argocd-redis", "Deployment/argocd-dex-server",
		"Deployment/argocd-notifications-controller", "Service/argocd-metrics", "Service/argocd-repo-server",
		"Service/argocd-server-metrics", "Service/argocd-applicationset-controller", "Role/argocd-redis",
		"CustomResourceDefinition/applications.argoproj.io",
	} {
		if !seen[want] {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("install.yaml lacks %s", strings.Join(missing, ", "))
	}
	b.extras()
	vals, err := argoValues(cmData)
	if err != nil {
		return nil, err
	}
	b.files["values.yaml"] = vals
	b.files["Chart.yaml"] = fmt.Sprintf(`apiVersion: v2
name: argo-cd
version: %s
appVersion: %s
kubeVersion: ">=1.25.0-0"
description: >-
  hl test stand-in for argo-helm's argo-cd chart, built from Argo CD %s
  manifests/install.yaml; values mapped as argo-helm maps them (see
  hl.dev/hl/internal/testcharts).
`, chartVersion, appVersion, appVersion)
	b.add("release-name.yaml", `{{- if ne .Release.Name "`+ArgoCDRelease+`" }}
{{- fail (printf "the argo-cd stand-in of hl's tests names its objects for release %q, not %q" "`+ArgoCDRelease+`" .Release.Name) }}
{{- end }}`)
	return b.files, nil
}

// labels are argo-helm's labels for an object: install.yaml's own plus
// chart, instance, managed-by and version.
func (b *argoBuilder) labels(own map[string]any) map[string]any {
	l := map[string]any{}
	for k, v := range own {
		l[k] = v
	}
	l["helm.sh/chart"] = "argo-cd-" + b.chartVersion
	l["app.kubernetes.io/instance"] = ArgoCDRelease
	l["app.kubernetes.io/managed-by"] = "Helm"
	l["app.kubernetes.io/part-of"] = "argocd"
	l["app.kubernetes.io/version"] = b.appVersion
	return l
}

var clusterScoped = map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true}

// object maps one install.yaml object.
func (b *argoBuilder) object(kind, name string, o map[string]any) error {
	comp, _ := componentOf(name)
	meta := mapAt(o, "metadata")
	meta["labels"] = b.labels(mapAt(o, "metadata", "labels"))
	if !clusterScoped[kind] {
		meta["namespace"] = b.mark(scalar("{{ .Release.Namespace }}"))
	}
	file := strings.ToLower(kind) + "-" + name + ".yaml"
	guards := []string{comp.guard}
	switch kind {
	case "ClusterRoleBinding", "RoleBinding":
		for _, s := range list(o, "subjects") {
			if sm, ok := s.(map[string]any); ok && kind == "ClusterRoleBinding" {
				sm["namespace"] = b.mark(scalar("{{ .Release.Namespace }}"))
			}
		}
	}
	switch {
	case kind == "ClusterRole" || kind == "ClusterRoleBinding":
		if comp.key == "applicationSet" {
			// argo-helm renders these only for ApplicationSets in any
			// namespace.
			guards = append(guards, ".Values.applicationSet.allowAnyNamespace")
		}
	case kind == "ConfigMap" && name == "argocd-cm":
		meta["annotations"] = b.mark(optional(".Values.configs.cm.annotations"))
		o["data"] = b.mark(raw(func(ind int) string {
			return fmt.Sprintf(`
{{- $preset := dict }}
{{- with .Values.global.domain }}{{ $_ := set $preset "url" (printf "https://%%s" .) }}{{ end }}
{{- range $k, $v := mergeOverwrite $preset (omit .Values.configs.cm "create" "annotations") }}
{{- if ne (toString $v) "" }}
%s{{ $k | quote }}: {{ toString $v | quote }}
{{- end }}
{{- end }}`, pad(ind))
		}))
		guards = append(guards, ".Values.configs.cm.create")
	case kind == "ConfigMap" && name == "argocd-cmd-params-cm":
		meta["annotations"] = b.mark(optional(".Values.configs.params.annotations"))
		o["data"] = b.mark(raw(func(ind int) string {
			return fmt.Sprintf(`
{{- $preset := dict "repo.server" "argocd-repo-server:8081" "server.repo.server.strict.tls" "false" "applicationsetcontroller.enable.leader.election" "false" }}
{{- range $c := tuple "applicationsetcontroller" "controller" "server" "reposerver" "notificationscontroller" "dexserver" "commitserver" }}
{{- $_ := set $preset (printf "%%s.log.format" $c) "text" }}
{{- $_ := set $preset (printf "%%s.log.level" $c) "info" }}
{{- end }}
{{- if .Values.redis.enabled }}{{ $_ := set $preset "redis.server" "argocd-redis:6379" }}{{ end }}
{{- if .Values.dex.enabled }}{{ $_ := set $preset "server.dex.server" "https://argocd-dex-server:5556" }}{{ $_ := set $preset "server.dex.server.strict.tls" "false" }}{{ end }}
{{- range $k, $v := mergeOverwrite $preset (omit .Values.configs.params "create" "annotations") }}
%s{{ $k | quote }}: {{ toString $v | quote }}
{{- end }}`, pad(ind))
		}))
		guards = append(guards, ".Values.configs.params.create")
	case kind == "ConfigMap" && name == "argocd-rbac-cm":
		meta["annotations"] = b.mark(optional(".Values.configs.rbac.annotations"))
		o["data"] = b.mark(raw(func(ind int) string {
			return fmt.Sprintf(`
{{- range $k, $v := omit .Values.configs.rbac "create" "annotations" }}
%s{{ $k | quote }}: {{ toString $v | quote }}
{{- end }}`, pad(ind))
		}))
		guards = append(guards, ".Values.configs.rbac.create")
	case kind == "Secret" && name == "argocd-secret":
		guards = append(guards, ".Values.configs.secret.createSecret")
	case kind == "NetworkPolicy":
		// argo-helm names them after the workload and renders them only
		// on request.
		name = strings.TrimSuffix(name, "-network-policy")
		meta["name"] = name
		file = "networkpolicy-" + name + ".yaml"
		guards = append(guards, ".Values.global.networkPolicy.create")
	case comp.key == "redis" && (kind == "ServiceAccount" || kind == "Role" || kind == "RoleBinding"):
		// install.yaml's redis creates its password in an init container
		// running as argocd-redis; argo-helm does it in a pre-install
		// hook Job with its own account.
		meta["name"] = "argocd-redis-secret-init"
		meta["annotations"] = hookAnnotations()
		if kind == "RoleBinding" {
			mapAt(o, "roleRef")["name"] = "argocd-redis-secret-init"
			for _, s := range list(o, "subjects") {
				if sm, ok := s.(map[string]any); ok {
					sm["name"] = "argocd-redis-secret-init"
				}
			}
		}
		file = strings.ToLower(kind) + "-argocd-redis-secret-init.yaml"
		guards = append(guards, ".Values.redisSecretInit.enabled")
	case kind == "Service":
		return b.service(name, o, comp, guards)
	case kind == "Deployment" || kind == "StatefulSet":
		if err := b.workload(name, o, comp); err != nil {
			return err
		}
	}
	return b.emit(file, o, guards...)
}

func hookAnnotations() map[string]any {
	return map[string]any{"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-delete-policy": "before-hook-creation"}
}

// service maps a Service. argo-helm serves every component's metrics from
// its own <workload>-metrics Service, rendered only when
// <component>.metrics.enabled; install.yaml puts the repo-server's and the
// applicationset-controller's metrics ports on their main Service and
// names the controller's argocd-metrics.
func (b *argoBuilder) service(name string, o map[string]any, comp argoComponent, guards []string) error {
	spec := mapAt(o, "spec")
	sel := mapAt(spec, "selector")
	if sel == nil {
		return fmt.Errorf("service %s: no selector", name)
	}
	sel["app.kubernetes.io/instance"] = ArgoCDRelease
	metricsGuard := ".Values." + comp.key + ".metrics.enabled"
	if name == comp.workload+"-metrics" || name == "argocd-metrics" {
		mapAt(o, "metadata")["name"] = comp.workload + "-metrics"
		b.metricsName[comp.key] = str(mapAt(o, "metadata", "labels"), "app.kubernetes.io/name")
		return b.emit("service-"+comp.workload+"-metrics.yaml", o, append(guards, metricsGuard)...)
	}
	var keep, metrics []any
	for _, p := range list(spec, "ports") {
		if pm, ok := p.(map[string]any); ok && str(pm, "name") == "metrics" {
			metrics = append(metrics, p)
			continue
		}
		keep = append(keep, p)
	}
	if len(metrics) > 0 && len(keep) > 0 && comp.key != "dex" {
		m, err := deepCopy(o)
		if err != nil {
			return err
		}
		mapAt(m, "metadata")["name"] = comp.workload + "-metrics"
		mapAt(m, "metadata", "labels")["app.kubernetes.io/name"] = comp.workload + "-metrics"
		mapAt(m, "spec")["ports"] = metrics
		b.metricsName[comp.key] = comp.workload + "-metrics"
		if err := b.emit("service-"+comp.workload+"-metrics.yaml", m, append(guards, metricsGuard)...); err != nil {
			return err
		}
		spec["ports"] = keep
	}
	return b.emit("service-"+name+".yaml", o, guards...)
}

// workload maps a Deployment or StatefulSet: argo-helm's container names,
// the instance label in the selector, and <component>.resources, .env,
// .volumeMounts, .volumes, .hostAliases, .extraContainers and
// .initContainers.
func (b *argoBuilder) workload(name string, o map[string]any, comp argoComponent) error {
	if comp.workload != name {
		return fmt.Errorf("workload %s: no component", name)
	}
	v := ".Values." + comp.key
	if comp.key != "redis" { // argo-helm's redis selects by name alone
		mapAt(o, "spec", "selector", "matchLabels")["app.kubernetes.io/instance"] = ArgoCDRelease
	}
	tmeta := mapAt(o, "spec", "template", "metadata")
	tl := mapAt(tmeta, "labels")
	if tl == nil {
		tl = map[string]any{}
	}
	tmeta["labels"] = b.labels(tl)
	pod := mapAt(o, "spec", "template", "spec")
	if pod == nil {
		return fmt.Errorf("workload %s: no pod spec", name)
	}
	found := false
	for _, c := range list(pod, "containers") {
		cm, ok := c.(map[string]any)
		if !ok || str(cm, "name") != comp.container {
			continue
		}
		found = true
		cm["name"] = comp.helmContainer
		cm["resources"] = b.mark(always(v + ".resources"))
		cm["env"] = appendOrSet(b, cm, "env", v+".env")
		cm["volumeMounts"] = appendOrSet(b, cm, "volumeMounts", v+".volumeMounts")
	}
	if !found {
		return fmt.Errorf("workload %s: no container %s", name, comp.container)
	}
	var inits []any
	for _, c := range list(pod, "initContainers") {
		cm, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if comp.key == "redis" && str(cm, "name") == "secret-init" {
			// Moved to the argocd-redis-secret-init hook Job.
			if err := b.redisSecretInit(cm); err != nil {
				return err
			}
			continue
		}
		// argo-helm gives copyutil the component's resources unless
		// repoServer.copyutil.resources (dex.initImage.resources) says
		// otherwise.
		sub := "copyutil"
		if comp.key == "dex" {
			sub = "initImage"
		}
		cm["resources"] = b.mark(always(fmt.Sprintf("(default %s.resources (dig %q \"resources\" dict %s))", v, sub, mapExpr(v))))
		inits = append(inits, cm)
	}
	if comp.key == "redis" {
		// argo-helm's redis runs as the namespace's default account.
		pod["serviceAccountName"] = "default"
	}
	if len(inits) > 0 {
		pod["initContainers"] = append(inits, b.mark(appended(v+".initContainers")))
	} else {
		pod["initContainers"] = b.mark(optional(v + ".initContainers"))
	}
	pod["containers"] = append(list(pod, "containers"), b.mark(appended(v+".extraContainers")))
	pod["volumes"] = appendOrSet(b, pod, "volumes", v+".volumes")
	pod["hostAliases"] = appendOrSet(b, pod, "hostAliases", v+".hostAliases")
	return nil
}

// mapExpr turns ".Values.a.b" into "(.Values.a.b | default dict)" so dig
// gets a map even when the key is unset.
func mapExpr(v string) string { return "(" + v + " | default dict)" }

// appendOrSet appends the list at expr to m[key], or sets m[key] to it when
// m has no such list.
func appendOrSet(b *argoBuilder, m map[string]any, key, expr string) any {
	if l := list(m, key); len(l) > 0 {
		return append(l, b.mark(appended(expr)))
	}
	return b.mark(optional(expr))
}

// redisSecretInit is argo-helm's pre-install hook Job that creates the
// argocd-redis Secret: install.yaml's secret-init init container, run as
// argocd-redis-secret-init.
func (b *argoBuilder) redisSecretInit(c map[string]any) error {
	c["resources"] = b.mark(always(".Values.redisSecretInit.resources"))
	labels := b.labels(map[string]any{"app.kubernetes.io/name": "argocd-redis-secret-init", "app.kubernetes.io/component": "redis-secret-init"})
	job := map[string]any{
		"apiVersion": "batch/v1",
		"kind":       "Job",
		"metadata": map[string]any{
			"name":        "argocd-redis-secret-init",
			"namespace":   b.mark(scalar("{{ .Release.Namespace }}")),
			"labels":      labels,
			"annotations": hookAnnotations(),
		},
		"spec": map[string]any{
			"ttlSecondsAfterFinished": 60,
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{
					"containers":         []any{c},
					"restartPolicy":      "OnFailure",
					"serviceAccountName": "argocd-redis-secret-init",
					"securityContext":    map[string]any{"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"}},
				},
			},
		},
	}
	return b.emit("job-argocd-redis-secret-init.yaml", job, ".Values.redis.enabled", ".Values.redisSecretInit.enabled")
}

// extras are argo-helm objects install.yaml has no counterpart of: the
// server Ingress, argocd-cmp-cm and the ServiceMonitors.
func (b *argoBuilder) extras() {
	lab := func(name, component string, indent int) string {
		y, _ := yaml.Marshal(b.labels(map[string]any{"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}))
		return indentLines(string(y), indent)
	}
	b.add("ingress-argocd-server.yaml", `{{- $host := .Values.server.ingress.hostname | default .Values.global.domain }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: argocd-server
  namespace: {{ .Release.Namespace }}
  labels:
`+lab("argocd-server", "server", 4)+`
  {{- with .Values.server.ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .Values.server.ingress.ingressClassName }}
  ingressClassName: {{ . }}
  {{- end }}
  rules:
    - host: {{ $host }}
      http:
        paths:
          - path: {{ .Values.server.ingress.path }}
            pathType: {{ .Values.server.ingress.pathType }}
            backend:
              service:
                name: argocd-server
                port:
                  number: 80
  {{- if or .Values.server.ingress.tls .Values.server.ingress.extraTls }}
  tls:
    {{- if .Values.server.ingress.tls }}
    - hosts:
        - {{ $host }}
      secretName: argocd-server-tls
    {{- end }}
    {{- with .Values.server.ingress.extraTls }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}`, ".Values.server.ingress.enabled")
	b.add("configmap-argocd-cmp-cm.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cmp-cm
  namespace: {{ .Release.Namespace }}
  labels:
`+lab("argocd-cmp-cm", "repo-server", 4)+`
  {{- with .Values.configs.cmp.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
data:
  {{- range $name, $spec := .Values.configs.cmp.plugins }}
  {{ $name }}.yaml: |
    apiVersion: argoproj.io/v1alpha1
    kind: ConfigManagementPlugin
    metadata:
      name: {{ $name }}
    spec:
      {{- toYaml $spec | nindent 6 }}
  {{- end }}`, ".Values.configs.cmp.create")
	for _, c := range argoComponents {
		metricsName, ok := b.metricsName[c.key]
		if !ok {
			continue // dex and redis: argo-helm's need exporters hl enables for neither
		}
		v := ".Values." + c.key + ".metrics"
		b.add("servicemonitor-"+c.workload+".yaml", `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: `+c.workload+`
  namespace: {{ .Release.Namespace }}
  labels:
`+lab(c.workload, strings.TrimPrefix(c.workload, "argocd-"), 4)+`
    {{- with `+v+`.serviceMonitor.additionalLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  endpoints:
    - port: metrics
      {{- with `+v+`.serviceMonitor.interval }}
      interval: {{ . }}
      {{- end }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  selector:
    matchLabels:
      app.kubernetes.io/name: `+metricsName+`
      app.kubernetes.io/instance: `+ArgoCDRelease, c.guard, v+".enabled", v+".serviceMonitor.enabled", `.Capabilities.APIVersions.Has "monitoring.coreos.com/v1"`)
	}
}

func indentLines(s string, n int) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad(n) + l
	}
	return strings.Join(lines, "\n")
}

// argoValues is the stand-in's values.yaml: the keys the templates read,
// with argo-helm's defaults, and argocd-cm's data of install.yaml as the
// default configs.cm (argo-helm's values carry the same keys).
func argoValues(cmData map[string]any) (string, error) {
	component := func(extra map[string]any) map[string]any {
		m := map[string]any{
			"resources": map[string]any{}, "env": []any{}, "volumes": []any{}, "volumeMounts": []any{},
			"extraContainers": []any{}, "initContainers": []any{}, "hostAliases": []any{},
			"metrics": map[string]any{"enabled": false, "serviceMonitor": map[string]any{"enabled": false, "interval": "30s", "additionalLabels": map[string]any{}}},
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cm := map[string]any{
		"create": true, "annotations": map[string]any{},
		"application.instanceLabelKey":           "argocd.argoproj.io/instance",
		"application.sync.impersonation.enabled": false,
		"exec.enabled":                           false,
		"admin.enabled":                          true,
		"timeout.reconciliation":                 "180s",
		"timeout.hard.reconciliation":            "0s",
		"statusbadge.enabled":                    false,
	}
	for k, v := range cmData {
		cm[k] = v
	}
	vals := map[string]any{
		"global": map[string]any{"domain": "argocd.example.com", "networkPolicy": map[string]any{"create": false}},
		"configs": map[string]any{
			"cm":     cm,
			"params": map[string]any{"create": true, "annotations": map[string]any{}},
			"rbac": map[string]any{"create": true, "annotations": map[string]any{},
				"policy.default": "", "policy.csv": "", "scopes": "[groups]", "policy.matchMode": "glob"},
			"cmp":    map[string]any{"create": false, "annotations": map[string]any{}, "plugins": map[string]any{}},
			"secret": map[string]any{"createSecret": true},
		},
		"controller":     component(nil),
		"applicationSet": component(map[string]any{"allowAnyNamespace": false}),
		"dex":            component(map[string]any{"enabled": true, "initImage": map[string]any{"resources": map[string]any{}}}),
		"notifications":  component(map[string]any{"enabled": true}),
		"redis":          component(map[string]any{"enabled": true}),
		"repoServer":     component(map[string]any{"copyutil": map[string]any{"resources": map[string]any{}}}),
		"server": component(map[string]any{"ingress": map[string]any{
			"enabled": false, "hostname": "", "ingressClassName": "", "annotations": map[string]any{},
			"path": "/", "pathType": "Prefix", "tls": false, "extraTls": []any{},
		}}),
		"redisSecretInit": map[string]any{"enabled": true, "resources": map[string]any{}},
	}
	y, err := yaml.Marshal(vals)
	if err != nil {
		return "", err
	}
	return "# Values of hl's argo-cd stand-in: the keys its templates read, with\n# argo-helm's defaults (see hl.dev/hl/internal/testcharts).\n" + string(y), nil
}

// splitYAML decodes a multi-document YAML stream into objects.
func splitYAML(data []byte) ([]map[string]any, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []map[string]any
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, err
		}
		if len(m) > 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

func deepCopy(m map[string]any) (map[string]any, error) {
	y, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, yaml.Unmarshal(y, &out)
}

func mapAt(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		next, _ := m[p].(map[string]any)
		if next == nil {
			return nil
		}
		m = next
	}
	return m
}

func list(m map[string]any, key string) []any {
	l, _ := m[key].([]any)
	return l
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}
