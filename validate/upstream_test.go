package validate

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// moduleDir returns the folder of module@version in the local module
// cache, skipping the test when it is not there (no download here).
func moduleDir(t *testing.T, module, version string) string {
	t.Helper()
	dir, ok := cachedModule(module, version)
	if !ok {
		t.Fatalf("%s@%s could not be downloaded through the module proxy (go mod download -json %s@%s)", module, version, module, version)
	}
	return dir
}

// cachedModule downloads a module through the module proxy (a no-op when
// it is already in the module cache) and returns its source folder.
func cachedModule(module, version string) (string, bool) {
	out, err := exec.Command("go", "mod", "download", "-json", module+"@"+version).Output()
	if err != nil {
		return "", false
	}
	var m struct{ Dir string }
	if json.Unmarshal(out, &m) != nil || m.Dir == "" {
		return "", false
	}
	_, err = os.Stat(m.Dir)
	return m.Dir, err == nil
}

// certManagerChart prepares cert-manager's chart from its module source
// (its version is filled in at release time).
func certManagerChart(t *testing.T) string {
	t.Helper()
	src := moduleDir(t, "github.com/cert-manager/cert-manager", "v1.19.1")
	cm := filepath.Join(t.TempDir(), "cert-manager")
	copyTree(t, filepath.Join(src, "deploy", "charts", "cert-manager"), cm)
	tpl := mustRead(t, filepath.Join(cm, "Chart.template.yaml"))
	tpl = strings.NewReplacer("v0.0.0", "v1.19.1", "{{IS_PRERELEASE}}", "false").Replace(tpl)
	writeFiles(t, cm, map[string]string{"Chart.yaml": tpl})
	if err := os.Remove(filepath.Join(cm, "Chart.template.yaml")); err != nil {
		t.Fatal(err)
	}
	return cm
}

// cacheChart packages a chart folder into the chart cache.
func cacheChart(t *testing.T, cache, repoURL, dir string) {
	t.Helper()
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(CachePath(cache, repoURL, ch.Name(), ch.Metadata.Version), []byte(mustRead(t, p))); err != nil {
		t.Fatal(err)
	}
}

// TestUpstreamCharts renders real upstream charts that ship inside Go
// modules (external-dns, cert-manager with its CRDs): everything they
// render must be known and schema-valid; only the homelab policies the
// wrapper has not addressed (default-deny, resource requests) may fire.
func TestUpstreamCharts(t *testing.T) {
	edns := moduleDir(t, "sigs.k8s.io/external-dns", "v0.19.0")
	cm := certManagerChart(t)
	cache := t.TempDir()
	cacheChart(t, cache, "https://kubernetes-sigs.github.io/external-dns", filepath.Join(edns, "charts", "external-dns"))
	cacheChart(t, cache, "https://charts.jetstack.io", cm)

	dir := repoFor(t, "")
	writeFiles(t, dir, map[string]string{
		"system/external-dns/Chart.yaml":  "apiVersion: v2\nname: external-dns\nversion: 0.0.0\ndependencies:\n  - name: external-dns\n    version: 1.18.0\n    repository: https://kubernetes-sigs.github.io/external-dns\n",
		"system/cert-manager/Chart.yaml":  "apiVersion: v2\nname: cert-manager\nversion: 0.0.0\ndependencies:\n  - name: cert-manager\n    version: v1.19.1\n    repository: https://charts.jetstack.io\n",
		"system/cert-manager/values.yaml": "cert-manager:\n  crds:\n    enabled: true\n",
	})
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Resources < 50 {
		t.Errorf("only %d resources rendered", r.Resources)
	}
	for _, f := range r.Findings {
		if f.Policy != PolicyDefaultDeny && f.Policy != PolicyWorkloadResources {
			t.Errorf("unexpected: %s", f)
		}
	}
}
