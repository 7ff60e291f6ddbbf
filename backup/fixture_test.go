package backup

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/secrets"
	"hl.dev/hl/validate"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func identities(t testing.TB) []age.Identity {
	t.Helper()
	ids, err := secrets.LoadIdentities(filepath.Join("..", "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// rendered is testdata/config/valid/full.yaml (every catalog app on)
// rendered by the generator, with the local backup target's repository
// prefix set to localRepo when it is not "", and every object of it as
// validate.Render makes them with internal/testcharts' charts.
type rendered struct {
	dir       string
	manifests []validate.Manifest
	charts    *testcharts.Set
}

func renderFull(t *testing.T, localRepo string) *rendered {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join("..", "testdata", "config", "valid", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if localRepo != "" {
		const line = "    backups: {enabled: true}\n"
		if !strings.Contains(string(cfg), line) {
			t.Fatalf("full.yaml has no line %q to set the local target on", line)
		}
		cfg = []byte(strings.Replace(string(cfg), line, "    backups: {enabled: true, values: {targets: {local: {repository: \""+localRepo+"\"}}}}\n", 1))
	}
	r := &rendered{dir: t.TempDir(), charts: testcharts.Catalog(t)}
	if _, err := generator.Render(t.Context(), generator.Options{
		ConfigPath: "full.yaml", ConfigData: cfg, OutDir: r.dir, Identities: identities(t),
		Rand: rand.NewChaCha8([32]byte{19}), Now: func() time.Time { return testNow },
	}); err != nil {
		t.Fatal(err)
	}
	doc, probs, err := config.Load(filepath.Join(r.dir, config.FileName))
	if err != nil || len(probs) > 0 {
		t.Fatalf("rendered hl.yaml: %v %v", err, probs)
	}
	cache := t.TempDir()
	r.charts.Cache(t, cache, doc.Homelab.Spec.Mirrors.Charts...)
	rep, ms, err := validate.Render(t.Context(), validate.Options{Dir: r.dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Policy == validate.PolicyChartMissing {
			t.Fatalf("%s", f)
		}
	}
	r.manifests = ms
	return r
}

func str(m map[string]any, path ...string) string {
	for i, k := range path {
		v, ok := m[k]
		if !ok {
			return ""
		}
		if i == len(path)-1 {
			s, _ := v.(string)
			return s
		}
		m, _ = v.(map[string]any)
	}
	return ""
}
