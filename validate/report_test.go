package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPoliciesList(t *testing.T) {
	want := []string{"yaml-syntax", "schema", "unknown-kind", "chart-missing", "kustomize-build", "helm-render",
		"plaintext-secret", "default-credential", "unpinned-image", "unpinned-chart", "default-deny",
		"workload-resources", "privileged", "ingress-tls", "argocd-target", "duplicate-resource",
		"woodpecker-schema", "sops-recipients", "alertmanager-config", "server-dry-run"}
	if len(Policies) != len(want) {
		t.Fatalf("%d policies", len(Policies))
	}
	for i, p := range Policies {
		if p.ID != want[i] || p.Description == "" || p.Default != SeverityError {
			t.Errorf("policy %d: %+v", i, p)
		}
	}
}

func TestSeverityOverrides(t *testing.T) {
	ctx := context.Background()
	dir := repoFor(t, "unpinned-image")
	cache := t.TempDir()

	r, err := Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true, Policies: map[string]string{"unpinned-image": "warning"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.HasErrors() || r.Warnings() != 1 || r.Findings[0].Severity != SeverityWarning {
		t.Fatalf("--policy unpinned-image=warning: %v", r.Findings)
	}

	r, err = Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true, Policies: map[string]string{"unpinned-image": "off"}})
	if err != nil || len(r.Findings) != 0 {
		t.Fatalf("off: %v %v", err, r.Findings)
	}

	if _, err := Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true, Policies: map[string]string{"unpined-image": "warning"}}); err == nil || !strings.Contains(err.Error(), "unknown policy") {
		t.Fatalf("unknown policy: %v", err)
	}
	if _, err := Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true, Policies: map[string]string{"unpinned-image": "maybe"}}); err == nil {
		t.Fatal("bad severity accepted")
	}

	// Recorded in hl.yaml for CI; the command line still wins.
	hl := mustRead(t, filepath.Join(dir, "hl.yaml")) + "  validation:\n    policies:\n      unpinned-image: warning\n"
	writeFiles(t, dir, map[string]string{"hl.yaml": hl})
	r, err = Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil || r.HasErrors() || r.Warnings() != 1 {
		t.Fatalf("hl.yaml policies: %v %v", err, r.Findings)
	}
	r, err = Run(ctx, Options{Dir: dir, CacheDir: cache, Offline: true, Policies: map[string]string{"unpinned-image": "error"}})
	if err != nil || r.Errors() != 1 {
		t.Fatalf("flag over hl.yaml: %v %v", err, r.Findings)
	}
}

func TestHLYAMLProblemsAreFindings(t *testing.T) {
	dir := repoFor(t, "")
	hl := mustRead(t, filepath.Join(dir, "hl.yaml")) + "  validation:\n    policies:\n      no-such-policy: warning\n  bogus: 1\n"
	writeFiles(t, dir, map[string]string{"hl.yaml": hl})
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range r.Findings {
		files = append(files, f.Location()+" "+f.Policy)
	}
	n := strings.Count(hl, "\n")
	if !r.HasErrors() || !strings.Contains(strings.Join(files, ","), "hl.yaml:") {
		t.Fatalf("%d lines; findings %v", n, files)
	}
}

func TestReportOutput(t *testing.T) {
	dir := repoFor(t, "argocd-target")
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	if !strings.HasPrefix(out, "bootstrap/apps.yaml\n") || !strings.Contains(out, "  42    error   argocd-target      Application/argocd/ghost: spec.source.path: path apps/ghost does not exist") ||
		!strings.Contains(out, "3 errors, 0 warnings in 1 file") {
		t.Errorf("text:\n%s", out)
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Findings []Finding `json:"findings"`
		Errors   int       `json:"errors"`
		Warnings int       `json:"warnings"`
		Charts   int       `json:"charts"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Errors != 3 || len(back.Findings) != 3 || back.Findings[0].Policy != PolicyArgoCDTarget ||
		back.Findings[0].File != "bootstrap/apps.yaml" || back.Findings[0].Line != 42 || back.Findings[0].Resource != "Application/argocd/ghost" {
		t.Errorf("json:\n%s", js.String())
	}

	empty := &Report{}
	js.Reset()
	empty.WriteJSON(&js)
	if !strings.Contains(js.String(), `"findings": []`) {
		t.Errorf("empty report: %s", js.String())
	}
}

func TestIgnoresRenderStateAndCustomConfig(t *testing.T) {
	dir := repoFor(t, "")
	writeFiles(t, dir, map[string]string{
		".hl/last/apps/demo/broken.yaml": "a: [\n",
		".hl/state.yaml":                 "{{ not yaml\n",
	})
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Fatalf("%v", r.Findings)
	}
	// Without hl.yaml the checks that need it are skipped.
	if err := os.Remove(filepath.Join(dir, "hl.yaml")); err != nil {
		t.Fatal(err)
	}
	r, err = Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
	if err != nil || len(r.Findings) != 0 {
		t.Fatalf("%v %v", err, r.Findings)
	}
	if _, err := Run(context.Background(), Options{Dir: dir, ConfigFile: filepath.Join(dir, "nope.yaml")}); err == nil {
		t.Fatal("missing explicit config file accepted")
	}
}

func TestKubeVersion(t *testing.T) {
	dir := repoFor(t, "")
	writeFiles(t, dir, map[string]string{"apps/extra/ingress.yaml": `apiVersion: networking.k8s.io/v1beta1
kind: Ingress
metadata: {name: old, namespace: demo}
spec:
  tls: [{hosts: [old.home.example.com]}]
  rules: [{host: old.home.example.com}]
`})
	for kv, errs := range map[string]int{"v1.21.0": 0, "v1.33.5+k3s1": 1} {
		r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true, KubeVersion: kv})
		if err != nil {
			t.Fatal(err)
		}
		if r.Errors() != errs {
			t.Errorf("%s: %v", kv, r.Findings)
		}
	}
}
