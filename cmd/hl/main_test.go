package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/internal/iostreams"
)

var update = flag.Bool("update", false, "rewrite golden files")

// hl runs the CLI in-process with buffers and returns stdout, stderr and
// the exit code.
func hl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	code := run(ios, args)
	return out.String(), errOut.String(), code
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/hl -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestConfigValidateInvalidFixtures(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/config/invalid/*.yaml")
	if len(files) < 20 {
		t.Fatalf("%d invalid fixtures, want at least 20", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rel, _ := filepath.Rel("../..", f)
			// Run from the repo root so the golden output shows repo paths.
			t.Chdir("../..")
			out, _, code := hl(t, "config", "validate", rel)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			golden(t, strings.TrimSuffix(rel, ".yaml")+".expected", out)
		})
	}
}

func TestConfigValidateValidFixtures(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/config/valid/*.yaml")
	for _, f := range files {
		out, errOut, code := hl(t, "config", "validate", f)
		if code != 0 || !strings.Contains(out, "valid") {
			t.Errorf("%s: exit %d\n%s%s", f, code, out, errOut)
		}
	}
	if _, _, code := hl(t, "config", "validate", "--example"); code != 0 {
		t.Errorf("embedded example: exit %d", code)
	}
}

func TestConfigValidateJSON(t *testing.T) {
	out, _, code := hl(t, "config", "validate", "-o", "json", "../../testdata/config/invalid/bad-nodes.yaml")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var res struct {
		Valid    bool `json:"valid"`
		Problems []struct {
			Line     int    `json:"line"`
			Column   int    `json:"column"`
			Path     string `json:"path"`
			Message  string `json:"message"`
			Severity string `json:"severity"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if res.Valid || len(res.Problems) != 7 {
		t.Fatalf("got valid=%v with %d problems, want 7", res.Valid, len(res.Problems))
	}
	p := res.Problems[2]
	if p.Path != "spec.metal.nodes[1].mac" || p.Line != 27 || p.Severity != "error" {
		t.Errorf("third problem = %+v", p)
	}
}

func TestSchemaCommandMatchesCommittedFile(t *testing.T) {
	out, _, code := hl(t, "schema")
	want, err := os.ReadFile("../../schemas/hl.schema.json")
	if err != nil || code != 0 {
		t.Fatal(err, code)
	}
	if out != string(want) {
		t.Fatal("hl schema differs from schemas/hl.schema.json: run make schema")
	}
}

func TestVersionAndCompletion(t *testing.T) {
	out, _, code := hl(t, "version", "-o", "json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["apiVersion"] != "hl.dev/v1alpha1" {
		t.Fatalf("version -o json: %d %q", code, out)
	}
	out, _, code = hl(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_hl") {
		t.Fatalf("completion bash: exit %d", code)
	}
	_, errOut, code := hl(t, "version", "-o", "yaml")
	if code != 2 || !strings.Contains(errOut, "--output must be text or json") {
		t.Fatalf("bad --output: exit %d %q", code, errOut)
	}
}

func TestConfigMigrateCurrentIsNoop(t *testing.T) {
	src, err := os.ReadFile("../../testdata/config/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := hl(t, "config", "migrate", "../../testdata/config/valid/minimal.yaml")
	if code != 0 || !bytes.Equal([]byte(out), src) || !strings.Contains(errOut, "already") {
		t.Fatalf("migrate of a current file: exit %d, stderr %q", code, errOut)
	}
}
