// Package actions extracts from Gitea and Forgejo Actions workflows
// (.gitea/workflows, .forgejo/workflows): actions and reusable workflows
// pinned to a tag in uses:, docker:// actions, and job and service
// container images.
//
// An action named owner/repo is fetched by the runner from the forge's
// DEFAULT_ACTIONS_URL: GitHub for Gitea, data.forgejo.org for Forgejo;
// the dependency names the repository by its full URL, so its tags are
// read where the runner reads the action. A uses: pinned to a branch or a
// commit is no version and is left alone.
package actions

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/image"
	"hl.dev/hl/bot/extract/internal/yamlpos"
	"hl.dev/hl/bot/extract/kubernetes"
)

// Datasource of action tags (bot/datasource/gittags).
const Datasource = "git-tags"

// Default action hosts, as the forges ship them.
const (
	GiteaActionsURL   = "https://github.com"
	ForgejoActionsURL = "https://data.forgejo.org"
)

// Extractor reads workflows.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "gitea-actions" }

// Match selects workflow files.
func (Extractor) Match(p string) bool {
	return yamlpos.IsYAML(p) && (strings.HasPrefix(p, ".gitea/workflows/") || strings.HasPrefix(p, ".forgejo/workflows/"))
}

var (
	versionRe = regexp.MustCompile(`^v?\d+(\.\d+)*([-.+][0-9A-Za-z.-]+)?$`)
	ownerRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// Extract returns every action tag and container image.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	base := GiteaActionsURL
	if strings.HasPrefix(p, ".forgejo/") {
		base = ForgejoActionsURL
	}
	var out []bot.Dependency
	for _, doc := range f.Docs {
		jobs := yamlpos.Get(doc, "jobs")
		if jobs == nil || jobs.Kind != yaml.MappingNode {
			continue
		}
		for i := 1; i < len(jobs.Content); i += 2 {
			job := jobs.Content[i]
			if d, ok := e.uses(f, p, base, yamlpos.Get(job, "uses")); ok {
				out = append(out, d)
			}
			if c := yamlpos.Get(job, "container"); c != nil && c.Kind == yaml.ScalarNode {
				if d, ok := image.FromScalar(f, p, e.Name(), c); ok {
					out = append(out, d)
				}
			}
			for _, key := range []string{"container", "services"} {
				if n := yamlpos.Get(job, key); n != nil && n.Kind == yaml.MappingNode {
					out = append(out, kubernetes.Images(f, p, e.Name(), n)...)
				}
			}
			if steps := yamlpos.Get(job, "steps"); steps != nil && steps.Kind == yaml.SequenceNode {
				for _, step := range steps.Content {
					if d, ok := e.uses(f, p, base, yamlpos.Get(step, "uses")); ok {
						out = append(out, d)
					}
				}
			}
		}
	}
	return out, nil
}

// uses reads "owner/repo[/path]@ref", "https://host/owner/repo[/path]@ref"
// and "docker://image:tag".
func (e Extractor) uses(f *yamlpos.File, p, base string, n *yaml.Node) (bot.Dependency, bool) {
	s, ok := yamlpos.Str(n)
	if !ok {
		return bot.Dependency{}, false
	}
	if ref, ok := strings.CutPrefix(s, "docker://"); ok {
		r, ok := image.Parse(ref)
		if !ok || r.Tag == "" {
			return bot.Dependency{}, false
		}
		at := len("docker://") + r.TagStart
		rng, ok := f.SubRange(n, at, at+len(r.Tag))
		if !ok {
			return bot.Dependency{}, false
		}
		return image.New(p, e.Name(), r.Repository, r.Tag, rng), true
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 || strings.HasPrefix(s, "./") {
		return bot.Dependency{}, false
	}
	name, ref := s[:at], s[at+1:]
	if !versionRe.MatchString(ref) {
		return bot.Dependency{}, false // a branch or a commit
	}
	host := base
	if i := strings.Index(name, "://"); i >= 0 {
		if j := strings.IndexByte(name[i+3:], '/'); j >= 0 {
			host, name = name[:i+3+j], name[i+3+j+1:]
		}
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 || !ownerRe.MatchString(parts[0]) || !ownerRe.MatchString(parts[1]) {
		return bot.Dependency{}, false
	}
	rng, ok := f.SubRange(n, at+1, len(s))
	if !ok {
		return bot.Dependency{}, false
	}
	return bot.Dependency{
		File: p, Manager: e.Name(), Datasource: Datasource, Versioning: image.Versioning,
		Package: host + "/" + parts[0] + "/" + strings.TrimSuffix(parts[1], ".git"), Current: ref, Range: rng,
	}, true
}
