// Package argocd extracts Helm chart pins from Argo CD Application and
// ApplicationSet sources (repoURL + chart + targetRevision; OCI repos with
// or without the oci:// scheme) and the images in inline valuesObject.
package argocd

import (
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/helmchart"
	"hl.dev/hl/bot/extract/helmvalues"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Extractor reads Argo CD manifests.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "argocd-app" }

// Match selects YAML files; Extract keeps Argo CD kinds only.
func (Extractor) Match(p string) bool { return yamlpos.IsYAML(p) }

// Extract returns chart pins and inline-values images.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	if !yamlpos.HasAny(content, "argoproj.io") {
		return nil, nil
	}
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	var out []bot.Dependency
	for _, doc := range f.Docs {
		api, kind := yamlpos.Kind(doc)
		if !strings.HasPrefix(api, "argoproj.io/") {
			continue
		}
		spec := yamlpos.Get(doc, "spec")
		switch kind {
		case "Application":
		case "ApplicationSet":
			spec = yamlpos.Path(spec, "template", "spec")
		default:
			continue
		}
		var sources []*yaml.Node
		if s := yamlpos.Get(spec, "source"); s != nil {
			sources = append(sources, s)
		}
		if ss := yamlpos.Get(spec, "sources"); ss != nil && ss.Kind == yaml.SequenceNode {
			sources = append(sources, ss.Content...)
		}
		for _, src := range sources {
			out = append(out, e.source(f, p, src)...)
		}
	}
	return out, nil
}

func (e Extractor) source(f *yamlpos.File, p string, src *yaml.Node) []bot.Dependency {
	var out []bot.Dependency
	repo, chart := yamlpos.GetStr(src, "repoURL"), yamlpos.GetStr(src, "chart")
	if chart == "" && strings.HasPrefix(repo, "oci://") {
		// Argo CD 3.1 OCI sources name the chart in the URL.
		if i := strings.LastIndexByte(repo, '/'); i > len("oci://") {
			repo, chart = repo[:i], repo[i+1:]
		}
	}
	if chart != "" {
		if d, ok := helmchart.Dependency(f, p, e.Name(), chart, repo, yamlpos.Get(src, "targetRevision")); ok {
			out = append(out, d)
		}
	}
	if vo := yamlpos.Path(src, "helm", "valuesObject"); vo != nil {
		out = append(out, helmvalues.Images(f, p, e.Name(), vo)...)
	}
	return out
}
