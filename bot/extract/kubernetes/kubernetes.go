// Package kubernetes extracts container images from raw Kubernetes
// manifests: every "image:" of any workload kind (Deployments, CronJobs,
// DaemonSets, system-upgrade Plans' prepare steps, CRDs that embed pod
// specs), in multi-document files.
package kubernetes

import (
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/image"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Extractor reads manifests.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "kubernetes" }

// Match selects YAML files other than the kinds with their own extractor
// (charts, values, kustomizations); Extract keeps documents with a kind.
func (Extractor) Match(p string) bool {
	if !yamlpos.IsYAML(p) || strings.HasPrefix(p, ".woodpecker") {
		return false
	}
	switch path.Base(p) {
	case "Chart.yaml", "Chart.yml", "requirements.yaml", "kustomization.yaml", "kustomization.yml", "Kustomization":
		return false
	}
	return true
}

// Extract returns the images of every manifest in the file.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	if !yamlpos.HasAny(content, "image:", "image\":") || !yamlpos.HasAny(content, "kind") {
		return nil, nil
	}
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	var out []bot.Dependency
	for _, doc := range f.Docs {
		api, kind := yamlpos.Kind(doc)
		if api == "" || kind == "" {
			continue // values files and other plain YAML
		}
		if strings.HasPrefix(api, "argoproj.io/") && strings.HasPrefix(kind, "Application") {
			continue // bot/extract/argocd reads their inline values
		}
		out = append(out, Images(f, p, e.Name(), doc)...)
	}
	return out, nil
}

// Images returns every tagged "image:" string under n.
func Images(f *yamlpos.File, file, manager string, n *yaml.Node) []bot.Dependency {
	var out []bot.Dependency
	yamlpos.Visit(n, func(_ []string, k, v *yaml.Node) bool {
		if k.Value == "image" && v.Kind == yaml.ScalarNode {
			if d, ok := image.FromScalar(f, file, manager, v); ok {
				out = append(out, d)
			}
			return false
		}
		return true
	})
	return out
}
