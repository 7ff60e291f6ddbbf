package schemas

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidConfigsMatchGeneratedSchema(t *testing.T) {
	files, _ := filepath.Glob("../testdata/config/valid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no valid fixtures")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateYAML(HL, data); err != nil {
			t.Errorf("%s does not match hl.schema.json: %v", f, err)
		}
	}
}

func TestSchemaRejectsUnknownField(t *testing.T) {
	data, err := os.ReadFile("../testdata/config/invalid/unknown-field.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = ValidateYAML(HL, data)
	if err == nil || !strings.Contains(err.Error(), "macc") {
		t.Fatalf("schema accepted an unknown field: %v", err)
	}
}

// TestProjectPipelinesAreValidWoodpecker checks every workflow of hl's own
// .woodpecker/ folder (CI and release). Woodpecker reads that folder and
// then ignores a top-level .woodpecker.yml, so none may be left there.
func TestProjectPipelinesAreValidWoodpecker(t *testing.T) {
	files, err := filepath.Glob("../.woodpecker/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		names[filepath.Base(f)] = true
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateYAML(Woodpecker, data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, want := range []string{"ci.yaml", "release.yaml"} {
		if !names[want] {
			t.Errorf(".woodpecker/%s is missing (found %v)", want, files)
		}
	}
	for _, shadowed := range []string{"../.woodpecker.yml", "../.woodpecker.yaml"} {
		if _, err := os.Stat(shadowed); err == nil {
			t.Errorf("%s exists: Woodpecker ignores it beside .woodpecker/", shadowed)
		}
	}
}

func TestWoodpeckerSchemaRejectsBrokenPipeline(t *testing.T) {
	for name, doc := range map[string]string{
		"no steps":       "when:\n  event: push\n",
		"unknown key":    "steps:\n  - name: t\n    image: golang:1.26\n    comands: [go test]\n",
		"bad event":      "when:\n  event: teleport\nsteps:\n  - name: t\n    image: golang:1.26\n    commands: [go test]\n",
		"top-level typo": "stepz:\n  - name: t\n",
	} {
		if err := ValidateYAML(Woodpecker, []byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
