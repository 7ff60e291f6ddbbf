// Package helmchart extracts the dependencies of Helm Chart.yaml files:
// wrapper charts pin upstream charts there, from HTTP repositories or OCI
// registries.
package helmchart

import (
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Extractor reads Chart.yaml dependencies.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "helm-chart" }

// Match selects Chart.yaml (and the requirements.yaml of apiVersion v1 charts).
func (Extractor) Match(p string) bool {
	b := path.Base(p)
	return b == "Chart.yaml" || b == "Chart.yml" || b == "requirements.yaml"
}

// Extract returns one dependency per pinned chart. Local (file://)
// repositories are skipped: they have no registry to ask. A repository
// named by alias (@repo, alias:repo) is kept as written in RegistryURL;
// the lookup resolves it through spec.bot.helmRepositories.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	var out []bot.Dependency
	for _, doc := range f.Docs {
		deps := yamlpos.Get(doc, "dependencies")
		if deps == nil {
			continue
		}
		for _, item := range deps.Content {
			name := yamlpos.GetStr(item, "name")
			repo := yamlpos.GetStr(item, "repository")
			vn := yamlpos.Get(item, "version")
			if name == "" || vn == nil {
				continue
			}
			d, ok := Dependency(f, p, e.Name(), name, repo, vn)
			if !ok {
				continue
			}
			if alias := yamlpos.GetStr(item, "alias"); alias != "" {
				d.Name = alias
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// Datasources of charts.
const (
	DatasourceHelm = "helm"
	DatasourceOCI  = "oci"
)

// Dependency builds a chart dependency from a repository URL (https://,
// oci:// or a scheme-less host/path, which Argo CD reads as OCI) and the
// version scalar. ok is false for repositories with nothing to look up.
func Dependency(f *yamlpos.File, file, manager, chart, repo string, version *yaml.Node) (bot.Dependency, bool) {
	cur, ok := yamlpos.Str(version)
	if !ok || cur == "" || strings.Contains(cur, "{{") {
		return bot.Dependency{}, false
	}
	rng, ok := f.ScalarRange(version)
	if !ok {
		return bot.Dependency{}, false
	}
	d := bot.Dependency{File: file, Manager: manager, Package: chart, Current: cur, Range: rng, Versioning: "semver"}
	switch {
	case repo == "" || strings.HasPrefix(repo, "file://") || repo == "@" || repo == "alias:":
		return bot.Dependency{}, false
	case strings.HasPrefix(repo, "@") || strings.HasPrefix(repo, "alias:"):
		d.Datasource, d.RegistryURL = DatasourceHelm, repo
	case strings.HasPrefix(repo, "oci://"):
		d.Datasource, d.RegistryURL = DatasourceOCI, strings.TrimSuffix(repo, "/")
	case strings.HasPrefix(repo, "https://") || strings.HasPrefix(repo, "http://"):
		d.Datasource, d.RegistryURL = DatasourceHelm, strings.TrimSuffix(repo, "/")
	case !strings.Contains(repo, "://") && !strings.Contains(repo, "@") && (strings.Contains(repo, "/") || strings.Contains(repo, ".")):
		// Argo CD: a Helm repoURL without a scheme is an OCI registry path.
		d.Datasource, d.RegistryURL = DatasourceOCI, "oci://"+strings.TrimSuffix(repo, "/")
	default:
		return bot.Dependency{}, false
	}
	return d, true
}
