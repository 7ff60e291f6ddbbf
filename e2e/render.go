package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/yamlnode"
	"hl.dev/hl/secrets"
)

// Homelab is a rendered repo on disk and the age key its secrets are
// encrypted to.
type Homelab struct {
	// Dir is the rendered repository root.
	Dir string
	// AgeKey is the age identity file's content (what the sops-age Secret
	// holds in the cluster); Identities are the same, parsed.
	AgeKey     []byte
	Identities []age.Identity
}

// RenderOptions change an hl.yaml before it is rendered.
type RenderOptions struct {
	// ChartMirrors and RegistryMirrors replace spec.mirrors.charts and
	// spec.mirrors.registries when set (test servers standing in for the
	// upstream repositories).
	ChartMirrors    []config.Mirror
	RegistryMirrors []config.Mirror
	// Forge sets spec.forge's fields given (url, owner, repo, ...).
	Forge map[string]string
	// Edit, when set, changes the parsed hl.yaml document last.
	Edit func(doc *yaml.Node) error
}

// Render renders the hl.yaml at cfgPath into dir (created; an empty or
// missing folder) with a fresh age key as the only recipient, so the
// repo's secrets are generated and encrypted to a key the test holds. The
// rendered hl.yaml is the edited document.
func Render(ctx context.Context, cfgPath, dir string, o RenderOptions) (*Homelab, error) {
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	var key bytes.Buffer
	recipient, err := secrets.GenerateIdentity(&key)
	if err != nil {
		return nil, err
	}
	ids, err := secrets.ParseIdentities(key.Bytes())
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: not one YAML document", cfgPath)
	}
	spec := yamlnode.Path(doc.Content[0], "spec")
	if spec == nil {
		return nil, fmt.Errorf("%s: no spec", cfgPath)
	}
	setPath(spec, seq(scalar(recipient)), "secrets", "ageRecipients")
	if o.ChartMirrors != nil {
		setPath(spec, mirrorsNode(o.ChartMirrors), "mirrors", "charts")
	}
	if o.RegistryMirrors != nil {
		setPath(spec, mirrorsNode(o.RegistryMirrors), "mirrors", "registries")
	}
	for _, k := range sortedKeys(o.Forge) {
		setPath(spec, scalar(o.Forge[k]), "forge", k)
	}
	if o.Edit != nil {
		if err := o.Edit(&doc); err != nil {
			return nil, err
		}
	}
	cfg, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// The config is read from a file outside the repo, as `hl render
	// --config` would; the render writes hl.yaml into the repo itself.
	cfgFile := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".hl.yaml")
	if err := os.WriteFile(cfgFile, cfg, 0o644); err != nil {
		return nil, err
	}
	defer os.Remove(cfgFile)
	if _, err := generator.Render(ctx, generator.Options{ConfigPath: cfgFile, OutDir: dir, Identities: ids}); err != nil {
		return nil, fmt.Errorf("render %s: %w", cfgPath, err)
	}
	return &Homelab{Dir: dir, AgeKey: key.Bytes(), Identities: ids}, nil
}

// setPath sets keys (nested mappings, created as needed) under m to v.
func setPath(m *yaml.Node, v *yaml.Node, keys ...string) {
	for i, k := range keys {
		next := yamlnode.Value(m, k)
		if i == len(keys)-1 {
			if next != nil {
				*next = *v
			} else {
				m.Content = append(m.Content, scalar(k), v)
			}
			return
		}
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			m.Content = append(m.Content, scalar(k), next)
		}
		m = next
	}
}

func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
}

func mirrorsNode(ms []config.Mirror) *yaml.Node {
	n := seq()
	for _, m := range ms {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
			scalar("from"), scalar(m.From), scalar("to"), scalar(m.To),
		}})
	}
	return n
}
