package config

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/yamlnode"
)

// Migration rewrites a document of apiVersion From into To on the YAML
// tree, so comments and key order survive `hl config migrate`.
type Migration struct {
	From, To string
	Apply    func(top *yaml.Node) error
}

// migrations is the chain from older apiVersions to APIVersion.
// hl.dev/v1alpha1 is the first format, so the chain is empty; a
// v1alpha2 adds {From: v1alpha1, To: v1alpha2, Apply: ...} here.
var migrations []Migration

// Migrate brings the document root to the newest version reachable
// through ms, returning the versions it passed through.
func Migrate(root *yaml.Node, ms []Migration) ([]string, error) { return migrate(root, ms) }

func migrate(root *yaml.Node, ms []Migration) ([]string, error) {
	top := root
	if top.Kind == yaml.DocumentNode {
		top = top.Content[0]
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("expected a mapping with apiVersion, kind, metadata and spec")
	}
	av := yamlnode.Value(top, "apiVersion")
	if av == nil || av.Value == "" {
		return nil, fmt.Errorf("apiVersion is required (%s)", APIVersion)
	}
	target := APIVersion
	if len(ms) > 0 {
		target = ms[len(ms)-1].To
	}
	var path []string
	for av.Value != target {
		step := -1
		for i, m := range ms {
			if m.From == av.Value {
				step = i
				break
			}
		}
		if step < 0 {
			if len(path) == 0 {
				return nil, fmt.Errorf("unsupported apiVersion %q: this hl reads %s (a newer hl may be needed)", av.Value, target)
			}
			return path, fmt.Errorf("no migration from %q to %s", av.Value, target)
		}
		if err := ms[step].Apply(top); err != nil {
			return path, fmt.Errorf("migrate %s to %s: %w", ms[step].From, ms[step].To, err)
		}
		path = append(path, ms[step].From)
		av.Value = ms[step].To
	}
	return path, nil
}
