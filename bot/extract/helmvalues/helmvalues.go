// Package helmvalues extracts container images from Helm values files:
// the image.registry/image.repository/image.tag maps most charts use and
// plain "image: repo:tag" strings, at any depth (wrapper charts key the
// upstream chart's values by the dependency name).
package helmvalues

import (
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/image"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Extractor reads values files.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "helm-values" }

// Match selects values.yaml, values-*.yaml, *-values.yaml and the like.
func (Extractor) Match(p string) bool {
	b := path.Base(p)
	if !yamlpos.IsYAML(b) {
		return false
	}
	stem := strings.TrimSuffix(strings.TrimSuffix(b, ".yaml"), ".yml")
	return stem == "values" || strings.HasPrefix(stem, "values-") || strings.HasPrefix(stem, "values.") ||
		strings.HasSuffix(stem, "-values") || strings.HasSuffix(stem, ".values") || strings.HasSuffix(stem, "_values")
}

// Extract returns the file's images.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	var out []bot.Dependency
	for _, doc := range f.Docs {
		out = append(out, Images(f, p, e.Name(), doc)...)
	}
	return out, nil
}

// Images finds every image under n: maps with repository and tag (and
// optionally registry), and "image:" strings with a tag.
func Images(f *yamlpos.File, file, manager string, n *yaml.Node) []bot.Dependency {
	var out []bot.Dependency
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			if d, ok := fromMap(f, file, manager, n); ok {
				out = append(out, d)
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "image" && v.Kind == yaml.ScalarNode {
					if d, ok := image.FromScalar(f, file, manager, v); ok {
						out = append(out, d)
					}
					continue
				}
				walk(v)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(n)
	return out
}

func fromMap(f *yamlpos.File, file, manager string, m *yaml.Node) (bot.Dependency, bool) {
	repo, tagNode := yamlpos.GetStr(m, "repository"), yamlpos.Get(m, "tag")
	tag, ok := yamlpos.Str(tagNode)
	if repo == "" || !ok || tag == "" {
		return bot.Dependency{}, false
	}
	if reg := strings.TrimSuffix(yamlpos.GetStr(m, "registry"), "/"); reg != "" {
		repo = reg + "/" + repo
	}
	if r, ok := image.Parse(repo); !ok || r.Tag != "" || r.Digest != "" {
		return bot.Dependency{}, false
	}
	if r, ok := image.Parse(repo + ":" + tag); !ok || r.Tag != tag {
		return bot.Dependency{}, false
	}
	rng, ok := f.ScalarRange(tagNode)
	if !ok {
		return bot.Dependency{}, false
	}
	d := image.New(file, manager, repo, tag, rng)
	if dn := yamlpos.Get(m, "digest"); dn != nil {
		if dg, _ := yamlpos.Str(dn); dg != "" {
			if dr, ok := f.ScalarRange(dn); ok {
				d.Related = map[string]bot.Range{"digest": dr}
			}
		}
	}
	return d, true
}
