package validate

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const casesDir = "../testdata/validate"

// copyTree copies src over dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

var wantRe = regexp.MustCompile(`# want: ([a-z-]+(?:\s*,\s*[a-z-]+)*)`)

// wants collects "# want: policy" markers: file:line policy.
func wants(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(dir, p)
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			if m := wantRe.FindStringSubmatch(sc.Text()); m != nil {
				for _, id := range strings.Split(m[1], ",") {
					out = append(out, fmt.Sprintf("%s:%d %s", filepath.ToSlash(rel), line, strings.TrimSpace(id)))
				}
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func got(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			out = append(out, fmt.Sprintf("%s %s", f.Location(), f.Policy))
		}
	}
	sort.Strings(out)
	return out
}

// repoFor lays out the clean base repo with a case overlaid.
func repoFor(t testing.TB, name string) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, filepath.Join(casesDir, "_base"), dir)
	if name != "" {
		copyTree(t, filepath.Join(casesDir, name), dir)
	}
	return dir
}

func TestBaseIsClean(t *testing.T) {
	dir := repoFor(t, "")
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	r.WriteText(&sb)
	if len(r.Findings) > 0 {
		t.Fatalf("clean repo has findings:\n%s", sb.String())
	}
	if r.Resources < 8 || r.Kustomizations != 1 {
		t.Fatalf("rendered %d resources from %d kustomizations", r.Resources, r.Kustomizations)
	}
	t.Log(sb.String())
}

// TestCases runs every testdata/validate/<case>: the clean base repo with
// the case's files laid over it. The error findings must be exactly the
// "# want: <policy>" markers of the case's files, at their lines.
func TestCases(t *testing.T) {
	entries, err := os.ReadDir(casesDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			dir := repoFor(t, e.Name())
			r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
			if err != nil {
				t.Fatal(err)
			}
			want := wants(t, filepath.Join(casesDir, e.Name()))
			if len(want) == 0 && e.Name() != "privileged-allowed" {
				t.Fatal("case has no # want: markers")
			}
			if g := got(r); strings.Join(g, "\n") != strings.Join(want, "\n") {
				var sb strings.Builder
				r.WriteText(&sb)
				t.Errorf("findings differ\n got: %q\nwant: %q\n\n%s", g, want, sb.String())
			}
		})
	}
	if n < 18 {
		t.Fatalf("only %d cases", n)
	}
}

func mustRead(t testing.TB, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
