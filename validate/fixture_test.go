package validate

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/secrets"
)

// TestFullFixtureRender renders testdata/config/valid/full.yaml with the
// generator (encrypted secrets and all) and validates the result offline.
// Upstream charts cannot be fetched here, so chart-missing is the only
// finding allowed; everything else hl renders must pass.
func TestFullFixtureRender(t *testing.T) {
	ids, err := secrets.LoadIdentities(filepath.Join("..", "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := generator.Render(context.Background(), generator.Options{
		ConfigPath: filepath.Join("..", "testdata", "config", "valid", "full.yaml"),
		OutDir:     dir,
		Identities: ids,
	}); err != nil {
		t.Fatal(err)
	}
	// The upstream charts of the catalog that ship in Go modules are
	// validated for real: cert-manager (through the fixture's mirror) and
	// external-dns.
	cache := t.TempDir()
	cacheChart(t, cache, "https://charts.mirror.home.example.com/jetstack", certManagerChart(t))
	// Chart 1.19.0 (the catalog's pin) ships in module v0.20.0.
	edns := moduleDir(t, "sigs.k8s.io/external-dns", "v0.20.0")
	cacheChart(t, cache, "https://kubernetes-sigs.github.io/external-dns", filepath.Join(edns, "charts", "external-dns"))
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kustomizations < 10 || r.Charts < 10 {
		t.Errorf("%d kustomizations, %d charts", r.Kustomizations, r.Charts)
	}
	// Every other chart cannot be had offline: the test packages a stand-in
	// under the catalog's name and version (no templates, so only the
	// wrapper's own manifests and values render), then the whole repo must
	// validate with no finding at all.
	missing := 0
	for _, f := range r.Findings {
		if f.Policy != PolicyChartMissing {
			t.Errorf("%s", f)
			continue
		}
		if strings.Contains(f.Message, "cert-manager") || strings.Contains(f.Message, "external-dns") {
			t.Errorf("a chart from its Go module was not used: %s", f)
		}
		missing++
		var name, version, repoURL string
		if _, err := fmt.Sscanf(f.Message, "chart %s %s from %s", &name, &version, &repoURL); err != nil {
			t.Fatalf("unexpected chart-missing message %q", f.Message)
		}
		stub := t.TempDir()
		writeFiles(t, stub, map[string]string{"Chart.yaml": fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\n", name, version)})
		cacheChart(t, cache, repoURL, stub)
	}
	if missing == 0 {
		t.Fatal("expected charts that cannot be had offline")
	}
	r, err = Run(context.Background(), Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Findings {
		t.Errorf("with every chart in the cache: %s", f)
	}
	t.Logf("%d charts as stand-ins; %d resources checked", missing, r.Resources)
}
