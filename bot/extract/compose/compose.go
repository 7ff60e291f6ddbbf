// Package compose extracts the service images of docker compose files
// (compose.yaml, docker-compose.yml and their .override/.prod variants).
package compose

import (
	"path"
	"strings"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/image"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Extractor reads compose files.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "docker-compose" }

// Match selects compose.y(a)ml, docker-compose.y(a)ml and
// (docker-)compose.<x>.y(a)ml.
func (Extractor) Match(p string) bool {
	b := path.Base(p)
	return yamlpos.IsYAML(b) && (strings.HasPrefix(b, "compose.") || strings.HasPrefix(b, "docker-compose."))
}

// Extract returns each service's tagged image. An image written with
// variables (${TAG:-1.2}) is not a pin the bot can edit.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	var out []bot.Dependency
	for _, doc := range f.Docs {
		services := yamlpos.Get(doc, "services")
		if services == nil {
			continue
		}
		for i := 1; i < len(services.Content); i += 2 {
			if n := yamlpos.Get(services.Content[i], "image"); n != nil {
				if d, ok := image.FromScalar(f, p, e.Name(), n); ok {
					out = append(out, d)
				}
			}
		}
	}
	return out, nil
}
