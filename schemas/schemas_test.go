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

func TestProjectPipelineIsValidWoodpecker(t *testing.T) {
	data, err := os.ReadFile("../.woodpecker.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateYAML(Woodpecker, data); err != nil {
		t.Fatalf(".woodpecker.yml: %v", err)
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
