package generator

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMergeBaseRoundTrip(t *testing.T) {
	files := map[string][]byte{
		"a.yaml":           []byte("a: 1\n"),
		"no/newline.txt":   []byte("last line"),
		"empty":            {},
		"tricky/marker.md": []byte("=== fake/header 3\nabc\n\n=== \n"),
		"with space/x y":   []byte("z\n"),
	}
	enc := encodeBase(files)
	if !bytes.Equal(enc, encodeBase(files)) {
		t.Fatal("encoding is not deterministic")
	}
	got, err := decodeBase(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("decoded %d files, want %d", len(got), len(files))
	}
	for p, c := range files {
		if !bytes.Equal(got[p], c) {
			t.Errorf("%s: got %q, want %q", p, got[p], c)
		}
	}
}

func TestMergeBaseCorruptionIsReportedWithLine(t *testing.T) {
	good := string(encodeBase(map[string][]byte{"a": []byte("x\ny\n"), "b": []byte("z\n")}))
	for name, tc := range map[string]struct{ data, want string }{
		"bad magic":        {"hello\n", "bad header"},
		"length too long":  {strings.Replace(good, "=== b 2", "=== b 9", 1), "line 7: bad length for b"},
		"length too short": {strings.Replace(good, "=== a 4", "=== a 3", 1), "line 6: want"},
		"no length":        {strings.Replace(good, "=== b 2", "=== b", 1), "line 7: want"},
		"duplicate":        {good + "=== b 2\nz\n\n", "line 10: b twice"},
	} {
		_, err := decodeBase([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tc.want)
		}
	}
}

// A repo rendered before .hl/merge-base existed keeps its merge base in a
// mirror tree under .hl/base/. The next render must merge against it, then
// replace it with .hl/merge-base.
func TestLegacyBaseTreeIsMergedAndReplaced(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("minimal"), dir, nil)
	raw, err := os.ReadFile(filepath.Join(dir, baseFile))
	if err != nil {
		t.Fatal(err)
	}
	base, err := decodeBase(raw)
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range base {
		full := filepath.Join(dir, legacyBaseDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, c, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, baseFile)); err != nil {
		t.Fatal(err)
	}
	// A user edit that only a merge against the old base keeps.
	readme := filepath.Join(dir, "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(b, []byte("\nMy notes.\n")...)
	if err := os.WriteFile(readme, edited, 0o644); err != nil {
		t.Fatal(err)
	}

	res := mustRender(t, fixture("minimal"), dir, nil)
	if len(res.Conflicts()) != 0 {
		t.Fatalf("conflicts: %+v", res.Conflicts())
	}
	if got, _ := os.ReadFile(readme); !bytes.Equal(got, edited) {
		t.Error("user edit lost when merging against the legacy base")
	}
	if _, err := os.Stat(filepath.Join(dir, legacyBaseDir)); !os.IsNotExist(err) {
		t.Errorf("legacy %s still there (err %v)", legacyBaseDir, err)
	}
	now, err := os.ReadFile(filepath.Join(dir, baseFile))
	if err != nil || !bytes.Equal(now, raw) {
		t.Errorf("%s not rewritten as before (err %v)", baseFile, err)
	}
}

// stagingLeftovers lists staging folders a render left behind: in .hl/ of
// the repo, or next to it.
func stagingLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{filepath.Join(dir, stateDir, ".staging-*"), filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".hl-render-*")} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	return out
}

// Files outside secret folders are staged while secrets are resolved; a
// secret that then fails must leave the repo as it was and no staging
// folder behind.
func TestSecretFailureAfterStagingLeavesTreeUntouched(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("full"), dir, nil)
	bad := filepath.Join(dir, "system/argocd/secrets/argocd-secret.sops.yaml")
	if err := os.WriteFile(bad, []byte("not: sops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	changed := overlay(t, map[string]func(string) string{
		"README.md.tmpl": func(s string) string { return s + "\nchanged\n" },
	})
	_, err := render(t, fixture("full"), dir, func(o *Options) { o.Templates = changed })
	if err == nil || !strings.Contains(err.Error(), "argocd-secret.sops.yaml") {
		t.Fatalf("want an error naming the broken secret, got %v", err)
	}
	diffSnapshots(t, before, snapshot(t, dir))
	if l := stagingLeftovers(t, dir); len(l) > 0 {
		t.Errorf("staging left behind: %v", l)
	}
}

// waitForStaging is an entropy source that fails, but only once the
// render has started staging its files next to dir.
type waitForStaging struct {
	dir  string
	seen bool
}

func (w *waitForStaging) Read(p []byte) (int, error) {
	for range 2000 {
		if m, _ := filepath.Glob(filepath.Join(filepath.Dir(w.dir), "."+filepath.Base(w.dir)+".hl-render-*")); len(m) > 0 {
			w.seen = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, errors.New("entropy source broke")
}

func TestFirstRenderFailureAfterStagingLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "homelab")
	src := &waitForStaging{dir: dir}
	_, err := render(t, fixture("full"), dir, func(o *Options) { o.Rand = src })
	if err == nil || !strings.Contains(err.Error(), "entropy source broke") {
		t.Fatalf("want the entropy error, got %v", err)
	}
	if !src.seen {
		t.Fatal("the render never staged anything before needing entropy: the test proves nothing")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s exists after a failed first render (err %v)", dir, err)
	}
	if l := stagingLeftovers(t, dir); len(l) > 0 {
		t.Errorf("staging left behind: %v", l)
	}
}
