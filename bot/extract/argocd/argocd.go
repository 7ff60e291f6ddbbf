// Package argocd extracts pins from Argo CD Application and
// ApplicationSet sources: Helm charts (repoURL + chart + targetRevision;
// OCI repos with or without the oci:// scheme), git sources pinned to a
// tag (repoURL + targetRevision, read with the git-tags datasource), the
// images of kustomize.images overrides and of inline valuesObject.
package argocd

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/helmchart"
	"hl.dev/hl/bot/extract/helmvalues"
	"hl.dev/hl/bot/extract/internal/image"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// tagRe is a targetRevision that names a version tag (HEAD, branches and
// commits are not).
var tagRe = regexp.MustCompile(`^v?\d+(\.\d+)*([-.+][0-9A-Za-z.-]+)?$`)

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
	rev := yamlpos.Get(src, "targetRevision")
	switch {
	case chart != "":
		if d, ok := helmchart.Dependency(f, p, e.Name(), chart, repo, rev); ok {
			out = append(out, d)
		}
	case strings.HasPrefix(repo, "https://") || strings.HasPrefix(repo, "http://"):
		if d, ok := gitSource(f, p, e.Name(), repo, rev); ok {
			out = append(out, d)
		}
	}
	if imgs := yamlpos.Path(src, "kustomize", "images"); imgs != nil && imgs.Kind == yaml.SequenceNode {
		for _, n := range imgs.Content {
			if d, ok := kustomizeImage(f, p, e.Name(), n); ok {
				out = append(out, d)
			}
		}
	}
	if vo := yamlpos.Path(src, "helm", "valuesObject"); vo != nil {
		out = append(out, helmvalues.Images(f, p, e.Name(), vo)...)
	}
	return out
}

// gitSource is a git repository pinned to a tag.
func gitSource(f *yamlpos.File, p, manager, repo string, rev *yaml.Node) (bot.Dependency, bool) {
	tag, ok := yamlpos.Str(rev)
	if !ok || !tagRe.MatchString(tag) {
		return bot.Dependency{}, false
	}
	rng, ok := f.ScalarRange(rev)
	if !ok {
		return bot.Dependency{}, false
	}
	return bot.Dependency{File: p, Manager: manager, Datasource: "git-tags", Versioning: "semver",
		Package: strings.TrimSuffix(repo, "/"), Current: tag, Range: rng}, true
}

// kustomizeImage reads an override "[name=]image:tag".
func kustomizeImage(f *yamlpos.File, p, manager string, n *yaml.Node) (bot.Dependency, bool) {
	s, ok := yamlpos.Str(n)
	if !ok {
		return bot.Dependency{}, false
	}
	at := strings.IndexByte(s, '=') + 1
	r, ok := image.Parse(s[at:])
	if !ok || r.Tag == "" {
		return bot.Dependency{}, false
	}
	rng, ok := f.SubRange(n, at+r.TagStart, at+r.TagStart+len(r.Tag))
	if !ok {
		return bot.Dependency{}, false
	}
	d := image.New(p, manager, r.Repository, r.Tag, rng)
	if r.Digest != "" {
		if dr, ok := f.SubRange(n, at+r.DigestAt, at+r.DigestAt+len(r.Digest)); ok {
			d.Related = map[string]bot.Range{"digest": dr}
		}
	}
	return d, true
}
