// Package hl_test holds the tests of the repository's shape: which
// package may import which, and what cmd/hl may hold.
package hl_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// capabilities are the top-level packages a leaf helper under internal/
// must never reach: internal/ holds only what they build on.
var capabilities = []string{"generator", "bot", "bootstrap", "validate", "metal", "wizard", "secrets", "release", "backup"}

func TestInternalImportsNoCapability(t *testing.T) {
	// Each internal package's own dependency list, not their union.
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./internal/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		n++
		pkg := fields[0]
		for _, dep := range fields[1:] {
			for _, c := range capabilities {
				if dep == "hl.dev/hl/"+c || strings.HasPrefix(dep, "hl.dev/hl/"+c+"/") {
					t.Errorf("%s imports %s: internal/ may hold only leaf helpers", pkg, dep)
				}
			}
		}
	}
	if n < 5 {
		t.Fatalf("go list found only %d internal packages", n)
	}
}

// cmd/hl parses flags, builds options and prints; the work lives in the
// packages. A file that grows past this has work in it.
func TestCommandFilesStayThin(t *testing.T) {
	const maxLines = 250
	files, err := filepath.Glob("cmd/hl/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd/hl files: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n > maxLines {
			t.Errorf("%s has %d lines (at most %d): move the work into its package", f, n, maxLines)
		}
	}
}
