package validate

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/secrets"
)

// TestFullFixtureRender renders testdata/config/valid/full.yaml with the
// generator (encrypted secrets and all) and validates the result offline.
func TestFullFixtureRender(t *testing.T) {
	renderAndValidate(t, generator.Options{ConfigPath: filepath.Join("..", "testdata", "config", "valid", "full.yaml")}, "https://charts.mirror.home.example.com/jetstack")
}

// TestExampleRender validates what `hl init --defaults` renders: the
// embedded example.
func TestExampleRender(t *testing.T) {
	renderAndValidate(t, generator.Options{ConfigPath: "example.yaml", ConfigData: config.Example()}, "https://charts.jetstack.io")
}

// renderAndValidate renders a config and validates it offline. The
// upstream charts of the catalog that ship in Go modules are validated for
// real: cert-manager (served from certManagerRepo) and external-dns.
// Every other chart cannot be had offline: the test packages a stand-in
// under the catalog's name and version (no templates, so only the
// wrapper's own manifests and values render); then the whole repo must
// validate with no finding at all.
func renderAndValidate(t *testing.T, opts generator.Options, certManagerRepo string) {
	t.Helper()
	ids, err := secrets.LoadIdentities(filepath.Join("..", "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts.OutDir, opts.Identities = dir, ids
	if _, err := generator.Render(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	cacheChart(t, cache, certManagerRepo, certManagerChart(t))
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
	t.Logf("2 real upstream charts, %d stand-ins; %d resources checked", missing, r.Resources)
}
