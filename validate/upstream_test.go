package validate

import (
	"context"
	"fmt"
	"testing"

	"hl.dev/hl/internal/chartcache"
	"hl.dev/hl/internal/testcharts"
)

// TestUpstreamCharts renders real upstream charts that ship inside Go
// modules (external-dns, cert-manager with its CRDs, from
// internal/testcharts): everything they render must be known and
// schema-valid; only the homelab policies the wrapper has not addressed
// (default-deny, resource requests) may fire.
func TestUpstreamCharts(t *testing.T) {
	set := testcharts.Catalog(t)
	upstream := &testcharts.Set{}
	dir := repoFor(t, "")
	files := map[string]string{"system/cert-manager/values.yaml": "cert-manager:\n  crds:\n    enabled: true\n"}
	for _, name := range []string{"external-dns", "cert-manager"} {
		c, ok := set.Get(name)
		if !ok || c.Kind != testcharts.Real {
			t.Fatalf("chart %s: want the real upstream chart from its Go module", name)
		}
		upstream.Charts = append(upstream.Charts, c)
		files["system/"+name+"/Chart.yaml"] = fmt.Sprintf("apiVersion: v2\nname: %s\nversion: 0.0.0\ndependencies:\n  - name: %s\n    version: %s\n    repository: %s\n", name, name, c.Version, c.Repository)
	}
	cache := t.TempDir()
	upstream.Cache(t, cache)
	writeFiles(t, dir, files)
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

// TestCachePathIsChartcache: the fixtures fill caches through
// internal/chartcache, so validate must read the same layout.
func TestCachePathIsChartcache(t *testing.T) {
	for _, tc := range [][3]string{
		{"https://charts.jetstack.io", "cert-manager", "v1.19.1"},
		{"https://charts.example.com/stable/ ", "webapp", "1.0.0"},
		{"oci://ghcr.io/woodpecker-ci/helm", "woodpecker", "3.4.1"},
	} {
		if got, want := CachePath("/cache", tc[0], tc[1], tc[2]), chartcache.Path("/cache", tc[0], tc[1], tc[2]); got != want {
			t.Errorf("CachePath(%q) = %s, chartcache.Path = %s", tc[0], got, want)
		}
	}
}
