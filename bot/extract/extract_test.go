package extract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestScanFixtureRepos scans repos laid out the way real homelabs are (a
// wrapper-chart repo hl did not write, and an hl render) and compares with
// golden JSON; every range must slice its value out of the file on disk.
func TestScanFixtureRepos(t *testing.T) {
	for _, name := range []string{"wrapper-charts", "hl-rendered", "homelab-mixed"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "bot", "repos", name)
			deps, problems, err := extract.Scan(context.Background(), dir, extract.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) > 0 {
				t.Errorf("problems: %+v", problems)
			}
			checkRanges(t, dir, deps)
			got, _ := json.MarshalIndent(deps, "", "  ")
			golden := filepath.Join("..", "..", "testdata", "bot", "repos", name+".scan.json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./bot/extract -update)", err)
			}
			if !bytes.Equal(append(got, '\n'), want) {
				t.Errorf("scan differs from %s (go test ./bot/extract -update, then review the diff)\n%s", golden, got)
			}
		})
	}
}

func checkRanges(t *testing.T, dir string, deps []bot.Dependency) {
	t.Helper()
	files := map[string][]byte{}
	for _, d := range deps {
		b, ok := files[d.File]
		if !ok {
			var err error
			if b, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(d.File))); err != nil {
				t.Fatal(err)
			}
			files[d.File] = b
		}
		if got := string(b[d.Range.Start:d.Range.End]); got != d.Current {
			t.Errorf("%s:%d-%d = %q, want %q", d.File, d.Range.Start, d.Range.End, got, d.Current)
		}
		for role, r := range d.Related {
			if r.Start < 0 || r.End > len(b) || r.Start >= r.End {
				t.Errorf("%s %s: bad range %v", d.File, role, r)
			}
		}
	}
}

func TestScanSkipsAndReports(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: x, image: nginx:1.25.3}]\n"
	write("apps/pod.yaml", manifest)
	write(".hl/last/apps/pod.yaml", manifest)                    // render state, not the repo
	write(".git/x.yaml", manifest)                               // VCS data
	write("apps/secret.sops.yaml", manifest)                     // encrypted
	write("apps/broken.yaml", "kind: Pod\nimage: [nginx:1.25\n") // reported once
	write("charts/x/templates/d.yaml", "{{- if .Values.x }}\nimage: {{ .Values.image }}\n{{- end }}\n")
	write("big/huge.yaml", strings.Repeat("# padding\n", 1000)+manifest)
	deps, problems, err := extract.Scan(context.Background(), dir, extract.Options{MaxFileSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 1 || deps[0].File != "apps/pod.yaml" || deps[0].Current != "1.25.3" {
		t.Errorf("deps = %+v", deps)
	}
	var files []string
	for _, p := range problems {
		files = append(files, p.File)
	}
	if strings.Join(files, ",") != "apps/broken.yaml,big/huge.yaml" {
		t.Errorf("problems = %+v", problems)
	}
}

func TestScanNotADirectory(t *testing.T) {
	if _, _, err := extract.Scan(context.Background(), "extract.go", extract.Options{}); err == nil {
		t.Fatal("want an error")
	}
}

func TestRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range extract.All() {
		if seen[e.Name()] {
			t.Errorf("duplicate extractor %s", e.Name())
		}
		seen[e.Name()] = true
	}
	for _, m := range []string{"helm-chart", "helm-values", "argocd-app", "kubernetes", "kustomize", "k3s", "os-image", "woodpecker"} {
		if !seen[m] {
			t.Errorf("extractor %s not registered", m)
		}
	}
}
