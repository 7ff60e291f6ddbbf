package generator

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
