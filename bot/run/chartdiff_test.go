package run_test

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/internal/fixture"
)

// A chart from an OCI registry, named in Chart.yaml under an alias, gets
// the rendered diff in its PR like an HTTP repository's chart, rendered
// with the wrapper's values under the alias (replicas: 7 here; the chart's
// default is 1). Against the real Gitea and an in-process registry holding
// the chart as helm push stores it.
func TestChartDiffFromOCIUnderAlias(t *testing.T) {
	e := newEnv(t)
	fixture.PushPodinfoOCI(t, e.regHost, "charts", "1.0.0", "1.1.0")
	e.push(t, e.owner, e.botToken, map[string]string{
		"apps/web/Chart.yaml": fmt.Sprintf(`apiVersion: v2
name: web
version: 0.1.0
dependencies:
  - name: podinfo
    version: 1.0.0
    repository: oci://%s/charts
    alias: frontend
`, e.regHost),
		"apps/web/values.yaml": "podinfo:\n  replicas: 3\nfrontend:\n  replicas: 7\n",
	}, "the chart from a registry, under an alias")
	e.run(t)
	body := e.bodyWith(t, "apps/web/Chart.yaml")
	for _, want := range []string{"### Rendered diff", `+  version: "1.1.0"`, `replicas: "7"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the OCI chart's PR body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "rendered diff unavailable") || strings.Contains(body, `replicas: "3"`) {
		t.Errorf("the diff is missing or rendered with the chart name's values, not the alias's:\n%s", body)
	}
}

// The chart of an Argo CD source gets the rendered diff too, rendered
// with what Argo CD passes it: helm.values overlaid by helm.valuesObject
// and helm.parameters, the release name and the destination namespace.
// A value file of this repository through a ref source ($values/…) is
// read from the base; one inside the chart or in another repository is
// not, and the summary says the diff is without it. An ApplicationSet's
// OCI chart with a templated name renders under the default release name.
// Against the real Gitea, the Helm repository fixture and a registry.
func TestChartDiffFromArgoCDSources(t *testing.T) {
	e := newEnv(t)
	fixture.PushPodinfoOCI(t, e.regHost, "charts", "1.0.0", "1.1.0")
	e.push(t, e.owner, e.botToken, map[string]string{
		"apps/argocd/podinfo.yaml": fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: podinfo
  namespace: argocd
spec:
  project: default
  destination:
    server: https://kubernetes.default.svc
    namespace: web
  source:
    repoURL: %s
    chart: podinfo
    targetRevision: 1.0.0
    helm:
      releaseName: front
      valueFiles: [values-prod.yaml]
      values: |
        replicas: 2
      valuesObject:
        replicas: 5
      parameters:
        - name: replicas
          value: "6"
`, e.helm.URL),
		"apps/argocd/podinfo-values.yaml": "replicas: 4\n",
		"apps/argocd/set.yaml": fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: podinfos
spec:
  generators:
    - list:
        elements: [{name: one}]
  template:
    metadata:
      name: '{{name}}'
    spec:
      project: default
      destination:
        server: https://kubernetes.default.svc
        namespace: edge
      sources:
        - repoURL: oci://%s/charts
          chart: podinfo
          targetRevision: 1.0.0
          helm:
            valueFiles:
              - $values/apps/argocd/podinfo-values.yaml
              - $other/values.yaml
        - repoURL: %s/%s/%s.git
          targetRevision: main
          ref: values
        - repoURL: https://git.example/someone/else.git
          targetRevision: main
          ref: other
`, e.regHost, e.srv.URL, e.owner, e.name),
	}, "Argo CD chart sources")
	e.run(t)
	// entry is the rendered-diff entry of file in the body of branch's
	// PR: from its heading line to the next heading (or the body's end).
	prs := e.prs(t)
	entry := func(branch, file string) string {
		for _, ps := range prs {
			for _, p := range ps {
				if p.Head.Name != branch {
					continue
				}
				i := strings.Index(p.Body, "("+file+"): ")
				if i < 0 {
					continue
				}
				rest := p.Body[i:]
				if j := strings.Index(rest[1:], "\n**"); j >= 0 {
					rest = rest[:j+1]
				}
				return rest
			}
		}
		t.Fatalf("the PR of %s has no rendered diff of %s", branch, file)
		return ""
	}
	app := entry("hl-bot/podinfo-1.0.x", "apps/argocd/podinfo.yaml")
	for _, want := range []string{"(without helm.valueFiles values-prod.yaml (inside the chart))", "name: front-podinfo", "namespace: web", `replicas: "6"`, `+  version: "1.0.1"`} {
		if !strings.Contains(app, want) {
			t.Errorf("the Application's rendered diff lacks %q:\n%s", want, app)
		}
	}
	set := entry("hl-bot/podinfo-1.x", "apps/argocd/set.yaml")
	for _, want := range []string{"name: release-podinfo", "namespace: edge", `replicas: "4"`, `+  version: "1.1.0"`, "(without helm.valueFiles $other/values.yaml (another repository))"} {
		if !strings.Contains(set, want) {
			t.Errorf("the ApplicationSet's rendered diff lacks %q:\n%s", want, set)
		}
	}
	for _, s := range []string{app, set} {
		if strings.Contains(s, "rendered diff unavailable") || strings.Contains(s, `replicas: "1"`) {
			t.Errorf("a diff is missing or rendered with the chart's defaults:\n%s", s)
		}
	}
}

// An idle run with the cache directory of the last one (a new process,
// as after a pod restart) downloads no chart index and no chart archive
// for the rendered diffs of the open PRs: indexes are revalidated (304),
// archives come from the cache by the digest the index or the registry
// manifest names. Counted on an HTTP chart repository and a registry.
func TestIdleRunDownloadsNoChart(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	full := map[string]int{} // path → 200 answers
	counted := fixture.NewPodinfoRepo(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			h.ServeHTTP(rec, r)
			if rec.code == http.StatusOK {
				mu.Lock()
				full[r.URL.Path]++
				mu.Unlock()
			}
		})
	}, "3.0.0", "3.1.0")
	reg := datasourcetest.NewRegistry(t, "", "")
	fixture.PushPodinfoOCI(t, reg.Host, "charts", "1.0.0", "1.1.0")
	e.push(t, e.owner, e.botToken, map[string]string{
		"apps/counted/Chart.yaml": "apiVersion: v2\nname: counted\nversion: 0.1.0\ndependencies:\n  - name: podinfo\n    version: 3.0.0\n    repository: " + counted.URL + "\n",
		"apps/oci/Chart.yaml":     "apiVersion: v2\nname: oci\nversion: 0.1.0\ndependencies:\n  - name: podinfo\n    version: 1.0.0\n    repository: oci://" + reg.Host + "/charts\n",
	}, "charts to count")
	e.opts.Lookup.InsecureRegistries = append(e.opts.Lookup.InsecureRegistries, reg.Host)
	dir := t.TempDir()
	e.opts.Lookup.Cache = datasource.NewCacheDir(dir)
	e.run(t)
	for _, file := range []string{"apps/counted/Chart.yaml", "apps/oci/Chart.yaml"} {
		e.bodyWith(t, "("+file+"): 1 manifests changed") // rendered, not "unavailable"
	}
	mu.Lock()
	first := maps.Clone(full)
	mu.Unlock()
	blobs := reg.BlobGets.Load()
	if first["/podinfo-3.0.0.tgz"] != 1 || first["/podinfo-3.1.0.tgz"] != 1 || blobs == 0 {
		t.Fatalf("the first run's downloads %v, registry blobs %d: want each archive once", first, blobs)
	}

	e.opts.Lookup.Cache = datasource.NewCacheDir(dir) // a new process on the same volume
	res := e.run(t)
	if n := res.Count("update"); n != 0 {
		t.Errorf("the idle run updated %d PRs", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for p, n := range full {
		if n != first[p] {
			t.Errorf("the idle run downloaded %s %d time(s)", p, n-first[p])
		}
	}
	if n := reg.BlobGets.Load() - blobs; n != 0 {
		t.Errorf("the idle run fetched %d blobs from the registry", n)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
