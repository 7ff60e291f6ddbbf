// Package woodpecker extracts the step, service and clone images of
// Woodpecker CI pipelines (.woodpecker/*.yaml, .woodpecker.yaml).
package woodpecker

import (
	"strings"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/yamlpos"
	"hl.dev/hl/bot/extract/kubernetes"
)

// Extractor reads pipelines.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "woodpecker" }

// Match selects pipeline files.
func (Extractor) Match(p string) bool {
	return yamlpos.IsYAML(p) && (strings.HasPrefix(p, ".woodpecker/") || strings.HasPrefix(p, ".woodpecker."))
}

// Extract returns every tagged image.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	var out []bot.Dependency
	for _, doc := range f.Docs {
		out = append(out, kubernetes.Images(f, p, e.Name(), doc)...)
	}
	return out, nil
}
