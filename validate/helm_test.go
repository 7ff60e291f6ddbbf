package validate

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	helmregistry "helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
)

const webappDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-webapp
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          ports: [{name: http, containerPort: 8080}]
          resources: {{- toYaml .Values.resources | nindent 12 }}
`

const webappServiceMonitor = `{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .Release.Name }}-webapp
spec:
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  endpoints:
    - port: http
      interval: 30s
{{- end }}
`

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer}
                color: {type: string, enum: [red, blue]}
                port: {x-kubernetes-int-or-string: true}
`

const widgetCR = `apiVersion: example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}
spec:
  size: 3
  port: http
  {{- if .Values.extraField }}
  colour: red
  {{- end }}
`

// packageChart writes name-version.tgz into dir with the Helm SDK.
func packageChart(t testing.TB, dir, name, version string, values map[string]any, templates, crds map[string]string) string {
	t.Helper()
	ch := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version, AppVersion: version},
		Values:   values,
	}
	vals, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	ch.Raw = []*chart.File{{Name: chartutil.ValuesfileName, Data: vals}}
	for n, body := range templates {
		ch.Templates = append(ch.Templates, &chart.File{Name: "templates/" + n, Data: []byte(body)})
	}
	for n, body := range crds {
		ch.Files = append(ch.Files, &chart.File{Name: "crds/" + n, Data: []byte(body)})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func webappValues() map[string]any {
	return map[string]any{
		"replicas":  1,
		"image":     map[string]any{"repository": "docker.io/library/nginx", "tag": "1.27.3"},
		"resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "32Mi"}},
	}
}

// chartServers serves webapp and widgets from an HTTP chart repository
// (index by helm's repo package) and webapp from an in-process OCI
// registry. It returns the HTTP repo URL and the registry host.
func chartServers(t testing.TB) (string, string) {
	httpURL, ociHost, _ := chartServersVia(t, nil)
	return httpURL, ociHost
}

// chartServersVia is chartServers with each server reached through front
// (nil: directly), which takes a server's base URL and returns the one
// clients use (a fault proxy's): the index's archive URLs and the
// returned URL and host are the front's. It also returns the archives
// served, by file name.
func chartServersVia(t testing.TB, front func(target string) string) (string, string, map[string][]byte) {
	t.Helper()
	if front == nil {
		front = func(u string) string { return u }
	}
	repoDir := t.TempDir()
	webapp := packageChart(t, repoDir, "webapp", "1.0.0", webappValues(),
		map[string]string{"deployment.yaml": webappDeployment, "servicemonitor.yaml": webappServiceMonitor}, nil)
	widgets := packageChart(t, repoDir, "widgets", "1.0.0", map[string]any{"extraField": false},
		map[string]string{"widget.yaml": widgetCR}, map[string]string{"widget.yaml": widgetCRD})
	archives := map[string][]byte{}
	for _, f := range []string{webapp, widgets} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		archives[filepath.Base(f)] = b
	}
	httpSrv := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	t.Cleanup(httpSrv.Close)
	httpURL := front(httpSrv.URL)
	idx, err := repo.IndexDirectory(repoDir, httpURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(repoDir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}

	ociSrv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(ociSrv.Close)
	host := strings.TrimPrefix(ociSrv.URL, "http://")
	c, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP(), helmregistry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(archives[filepath.Base(webapp)], host+"/charts/webapp:1.0.0"); err != nil {
		t.Fatal(err)
	}
	return httpURL, strings.TrimPrefix(front(ociSrv.URL), "http://"), archives
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const defaultDenyTemplate = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
spec:
  podSelector: {}
  policyTypes: [Ingress]
`

// chartRepo is the base repo plus three wrapper charts: one whose
// dependencies come from an HTTP repository through a mirror, one from an
// OCI registry through a mirror, one straight from the HTTP repository.
func chartRepo(t testing.TB, httpURL, ociHost string) string {
	dir := repoFor(t, "")
	hl, err := os.ReadFile(filepath.Join(dir, "hl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hl = append(hl, []byte(`  mirrors:
    charts:
      - from: https://charts.example.invalid/stable
        to: `+httpURL+`
      - from: oci://registry.example.invalid
        to: oci://`+ociHost+`
`)...)
	writeFiles(t, dir, map[string]string{
		"hl.yaml": string(hl),
		"system/web-http/Chart.yaml": `apiVersion: v2
name: web-http
version: 0.0.0
dependencies:
  - name: webapp
    version: 1.0.0
    repository: https://charts.example.invalid/stable
  - name: widgets
    version: 1.0.0
    repository: https://charts.example.invalid/stable
`,
		"system/web-http/values.yaml":                  "webapp:\n  replicas: 2\n",
		"system/web-http/templates/networkpolicy.yaml": defaultDenyTemplate,
		"system/web-oci/Chart.yaml": `apiVersion: v2
name: web-oci
version: 0.0.0
dependencies:
  - name: webapp
    version: 1.0.0
    repository: oci://registry.example.invalid/charts
`,
		"system/web-oci/values.yaml":                  "{}\n",
		"system/web-oci/templates/networkpolicy.yaml": defaultDenyTemplate,
		"apps/web-direct/Chart.yaml": `apiVersion: v2
name: web-direct
version: 0.0.0
dependencies:
  - name: webapp
    version: 1.0.0
    repository: ` + httpURL + `
`,
		"apps/web-direct/templates/networkpolicy.yaml": defaultDenyTemplate,
	})
	return dir
}

func runText(r *Report) string {
	var sb strings.Builder
	r.WriteText(&sb)
	return sb.String()
}

func TestPullChartsThenOfflineRun(t *testing.T) {
	ctx := context.Background()
	httpURL, ociHost := chartServers(t)
	dir := chartRepo(t, httpURL, ociHost)
	cache := t.TempDir()

	// Offline with an empty cache: every dependency is missing.
	r, err := Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	missing := r.ByPolicy(PolicyChartMissing)
	if len(missing) != 4 || len(r.Findings) != 4 {
		t.Fatalf("want 4 chart-missing findings, got:\n%s", runText(r))
	}
	for _, f := range missing {
		if !strings.Contains(f.Message, "run hl charts pull") || f.Line < 5 {
			t.Errorf("finding %s", f)
		}
	}

	pulled, err := PullCharts(ctx, Options{Dir: dir, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if len(pulled) != 4 {
		t.Fatalf("pulled %+v", pulled)
	}
	for _, p := range pulled {
		if p.Status != PullPulled {
			t.Errorf("%s from %s: %s %s", p.Name, p.Repository, p.Status, p.Error)
		}
		if strings.Contains(p.Repository, "example.invalid") && strings.Contains(p.From, "example.invalid") {
			t.Errorf("%s was not fetched through its mirror: %s", p.Name, p.From)
		}
		if want := CachePath(cache, p.Repository, p.Name, "1.0.0"); p.File != want {
			t.Errorf("cached at %s, want %s", p.File, want)
		}
	}
	again, err := PullCharts(ctx, Options{Dir: dir, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again {
		if p.Status != PullCached {
			t.Errorf("second pull of %s: %s", p.Name, p.Status)
		}
	}

	r, err = Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Fatalf("warm offline run:\n%s", runText(r))
	}
	if r.Charts != 3 {
		t.Errorf("rendered %d charts", r.Charts)
	}
	t.Log(runText(r))
}

func TestOnlineRunPullsMissingCharts(t *testing.T) {
	httpURL, ociHost := chartServers(t)
	dir := chartRepo(t, httpURL, ociHost)
	cache := t.TempDir()
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Fatalf("online run:\n%s", runText(r))
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*", "*.tgz"))
	if len(files) != 4 {
		t.Fatalf("cache holds %v", files)
	}
}

// TestRenderedFindings checks findings in resources rendered from
// upstream charts: they point at the wrapper's Chart.yaml dependency line
// and name the template.
func TestRenderedFindings(t *testing.T) {
	ctx := context.Background()
	httpURL, ociHost := chartServers(t)
	dir := chartRepo(t, httpURL, ociHost)
	cache := t.TempDir()
	if _, err := PullCharts(ctx, Options{Dir: dir, CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"system/web-http/values.yaml": "webapp:\n  image:\n    tag: latest\nwidgets:\n  extraField: true\n",
		// A wrapper template that is plain YAML keeps its own lines.
		"system/web-oci/templates/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\nbogus: true\n",
	})
	r, err := Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"system/web-http/Chart.yaml:5 unpinned-image",
		"system/web-http/Chart.yaml:8 schema",
		"system/web-oci/templates/extra.yaml:7 schema",
	}
	if g := got(r); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q\nwant %q\n%s", g, want, runText(r))
	}
	for _, f := range r.Findings {
		if f.Policy == PolicySchema && f.File == "system/web-http/Chart.yaml" {
			if f.Source != "web-http/charts/widgets/templates/widget.yaml" || f.Resource != "Widget/web-http/web-http" || f.Path != "spec.colour" {
				t.Errorf("finding %+v", f)
			}
		}
	}
}

// TestApplicationSetTargets: a chart deployed by a git-directory
// ApplicationSet renders into the namespace and release name the
// ApplicationSet's template gives it.
func TestApplicationSetTargets(t *testing.T) {
	dir := repoFor(t, "")
	writeFiles(t, dir, map[string]string{
		"bootstrap/appset.yaml": `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: system
  namespace: argocd
spec:
  goTemplate: true
  generators:
    - git:
        repoURL: git@git.home.example.com:homelab/cluster.git
        revision: main
        directories:
          - path: system/*
          - path: system/skipped
            exclude: true
  template:
    metadata:
      name: 'sys-{{.path.basename}}'
    spec:
      project: homelab
      source:
        repoURL: git@git.home.example.com:homelab/cluster.git
        targetRevision: main
        path: '{{.path.path}}'
      destination:
        server: https://kubernetes.default.svc
        namespace: '{{.path.basename}}-ns'
`,
		"system/tool/Chart.yaml":                   "apiVersion: v2\nname: tool\nversion: 0.0.0\n",
		"system/tool/templates/networkpolicy.yaml": defaultDenyTemplate,
		"system/tool/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {matchLabels: {app: tool}}
  template:
    metadata: {labels: {app: tool}}
    spec:
      containers:
        - name: tool
          image: docker.io/library/busybox:1.37.0
`,
	})
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 {
		t.Fatalf("%s", runText(r))
	}
	f := r.Findings[0]
	if f.Policy != PolicyWorkloadResources || f.Resource != "Deployment/tool-ns/sys-tool" || f.File != "system/tool/templates/deployment.yaml" || f.Line != 1 || f.Source != "tool/templates/deployment.yaml" {
		t.Fatalf("%+v", f)
	}
}

func TestWoodpeckerRootFile(t *testing.T) {
	dir := repoFor(t, "")
	writeFiles(t, dir, map[string]string{".woodpecker.yml": "steps:\n  - name: x\n    image: alpine:3.20\n    commands: [\"true\"]\n    when: {event: teleport}\n"})
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Policy != PolicyWoodpeckerSchema || r.Findings[0].File != ".woodpecker.yml" || r.Findings[0].Line != 5 {
		t.Fatalf("%s", runText(r))
	}
}

// TestApplicationHelmValues: values an Argo CD Application passes (value
// files, values, valuesObject, release name) reach the render.
func TestApplicationHelmValues(t *testing.T) {
	dir := repoFor(t, "")
	writeFiles(t, dir, map[string]string{
		"bootstrap/tool.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: tool
  namespace: argocd
spec:
  project: homelab
  source:
    repoURL: https://git.home.example.com/homelab/cluster
    targetRevision: main
    path: system/tool
    helm:
      releaseName: toolbox
      valueFiles: [values-prod.yaml]
      values: |
        replicas: 3
      valuesObject:
        tag: latest
  destination:
    server: https://kubernetes.default.svc
    namespace: tools
`,
		"system/tool/Chart.yaml":                   "apiVersion: v2\nname: tool\nversion: 0.0.0\n",
		"system/tool/values.yaml":                  "tag: \"1.0\"\nreplicas: 1\ncpu: 1m\n",
		"system/tool/values-prod.yaml":             "cpu: 50m\ntag: \"2.0\"\n",
		"system/tool/templates/networkpolicy.yaml": defaultDenyTemplate,
		"system/tool/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: tool}}
  template:
    metadata: {labels: {app: tool}}
    spec:
      containers:
        - name: tool
          image: docker.io/library/busybox:{{ .Values.tag }}
          resources: {requests: {cpu: {{ .Values.cpu }}, memory: 8Mi}}
`,
	})
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Policy != PolicyUnpinnedImage || r.Findings[0].Resource != "Deployment/tools/toolbox" {
		t.Fatalf("%s", runText(r))
	}
}

// TestKustomizeHelmCharts: a kustomization's helmCharts are pulled by
// PullCharts and rendered in-process with the Helm SDK.
func TestKustomizeHelmCharts(t *testing.T) {
	ctx := context.Background()
	httpURL, ociHost := chartServers(t)
	dir := chartRepo(t, httpURL, ociHost)
	writeFiles(t, dir, map[string]string{
		"apps/kh/kustomization.yaml": `namespace: kh
resources:
  - namespace.yaml
  - networkpolicy.yaml
helmCharts:
  - name: webapp
    repo: https://charts.example.invalid/stable
    version: 1.0.0
    releaseName: kh
    valuesFile: webapp-values.yaml
    valuesInline:
      image: {tag: latest}
`,
		"apps/kh/webapp-values.yaml": "replicas: 2\n",
		"apps/kh/namespace.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kh\n",
		"apps/kh/networkpolicy.yaml": defaultDenyTemplate,
	})
	cache := t.TempDir()
	r, err := Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range r.ByPolicy(PolicyChartMissing) {
		found = found || f.File == "apps/kh/kustomization.yaml" && f.Line == 6
	}
	if !found {
		t.Fatalf("no chart-missing at the helmCharts entry:\n%s", runText(r))
	}
	pulled, err := PullCharts(ctx, Options{Dir: dir, CacheDir: cache})
	if err != nil || len(pulled) != 4 { // webapp from the mirrored repo is shared
		t.Fatalf("%v %+v", err, pulled)
	}
	r, err = Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 {
		t.Fatalf("%s", runText(r))
	}
	f := r.Findings[0]
	if f.Policy != PolicyUnpinnedImage || f.File != "apps/kh/kustomization.yaml" || f.Line != 6 ||
		f.Resource != "Deployment/kh/kh-webapp" || f.Source != "webapp/templates/deployment.yaml" {
		t.Fatalf("%+v", f)
	}
}
