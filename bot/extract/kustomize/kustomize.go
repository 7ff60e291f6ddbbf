// Package kustomize extracts from kustomization.yaml: images: overrides
// (newTag), helmCharts: pins, and remote resources downloaded from
// GitHub or Gitea release assets (…/releases/download/<tag>/…).
package kustomize

import (
	"path"
	"regexp"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/helmchart"
	"hl.dev/hl/bot/extract/internal/image"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Extractor reads kustomizations.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "kustomize" }

// Match selects kustomization files.
func (Extractor) Match(p string) bool {
	switch path.Base(p) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return true
	}
	return false
}

// Release-asset URLs: https://host/owner/repo/releases/download/tag/file.
var releaseURL = regexp.MustCompile(`^(https?://[^/]+)/([^/]+)/([^/]+)/releases/download/([^/]+)/`)

// Extract returns the kustomization's pins.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	var out []bot.Dependency
	for _, doc := range f.Docs {
		if imgs := yamlpos.Get(doc, "images"); imgs != nil {
			for _, it := range imgs.Content {
				tagNode := yamlpos.Get(it, "newTag")
				tag, _ := yamlpos.Str(tagNode)
				repo := yamlpos.GetStr(it, "newName")
				if repo == "" {
					repo = yamlpos.GetStr(it, "name")
				}
				if tag == "" || repo == "" {
					continue
				}
				if r, ok := image.Parse(repo); !ok || r.Tag != "" {
					continue
				}
				rng, ok := f.ScalarRange(tagNode)
				if !ok {
					continue
				}
				d := image.New(p, e.Name(), repo, tag, rng)
				if dn := yamlpos.Get(it, "digest"); dn != nil {
					if dr, ok := f.ScalarRange(dn); ok && dn.Value != "" {
						d.Related = map[string]bot.Range{"digest": dr}
					}
				}
				out = append(out, d)
			}
		}
		if charts := yamlpos.Get(doc, "helmCharts"); charts != nil {
			for _, c := range charts.Content {
				name, repo := yamlpos.GetStr(c, "name"), yamlpos.GetStr(c, "repo")
				if d, ok := helmchart.Dependency(f, p, e.Name(), name, repo, yamlpos.Get(c, "version")); ok {
					out = append(out, d)
				}
			}
		}
		for _, key := range []string{"resources", "components", "crds"} {
			list := yamlpos.Get(doc, key)
			if list == nil {
				continue
			}
			for _, r := range list.Content {
				if d, ok := releaseAsset(f, p, e.Name(), r); ok {
					out = append(out, d)
				}
			}
		}
	}
	return out, nil
}

func releaseAsset(f *yamlpos.File, file, manager string, n *yaml.Node) (bot.Dependency, bool) {
	s, ok := yamlpos.Str(n)
	if !ok {
		return bot.Dependency{}, false
	}
	m := releaseURL.FindStringSubmatchIndex(s)
	if m == nil {
		return bot.Dependency{}, false
	}
	host, owner, repo, tag := s[m[2]:m[3]], s[m[4]:m[5]], s[m[6]:m[7]], s[m[8]:m[9]]
	rng, ok := f.SubRange(n, m[8], m[9])
	if !ok {
		return bot.Dependency{}, false
	}
	d := bot.Dependency{File: file, Manager: manager, Package: owner + "/" + repo, Current: tag, Range: rng, Versioning: "semver"}
	if host == "https://github.com" {
		d.Datasource = "github-releases"
	} else {
		d.Datasource, d.RegistryURL = "gitea-releases", host
	}
	return d, true
}
