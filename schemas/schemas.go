// Package schemas owns the JSON schemas hl checks files against: hl.yaml's
// own (generated from internal/config's types by `hl schema`; a test keeps
// the committed copy fresh), Woodpecker's pipeline schema, and later the
// CRD schemas used by hl validate. It embeds them as data and offers one
// way to validate YAML against any of them.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

//go:embed *.json crds/*.json
var FS embed.FS

// Names of the embedded schemas.
const (
	HL         = "hl.schema.json"
	Woodpecker = "woodpecker-pipeline.schema.json"
)

var (
	mu       sync.Mutex
	compiled = map[string]*jsonschema.Schema{}
)

// Get returns the compiled embedded schema called name.
func Get(name string) (*jsonschema.Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	if s, ok := compiled[name]; ok {
		return s, nil
	}
	data, err := FS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	url := "mem:///" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	compiled[name] = s
	return s, nil
}

// ValidateYAML checks one YAML document against the embedded schema name.
// The error lists every violation with its JSON pointer.
func ValidateYAML(name string, data []byte) error {
	s, err := Get(name)
	if err != nil {
		return err
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	// Round-trip through JSON so YAML's types become the JSON types the
	// validator expects (map[string]any, float64, ...).
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("not representable as JSON: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}
