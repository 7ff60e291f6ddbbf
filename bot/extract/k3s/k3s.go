// Package k3s extracts pinned k3s versions (vX.Y.Z+k3sN): the version of
// system-upgrade-controller Plans, any YAML value that is a k3s version
// (metal pins such as `k3s: v1.33.5+k3s1`, Ansible `k3s_version`), and
// install scripts (INSTALL_K3S_VERSION=…), where every other mention of the
// same version in the script is a related range that moves with it.
package k3s

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/internal/yamlpos"
)

// Datasource, package and versioning of every k3s pin.
const (
	Datasource = "k3s-channel"
	Package    = "k3s"
	Versioning = "k3s"
)

// Extractor reads k3s pins.
type Extractor struct{}

// Name is the manager name.
func (Extractor) Name() string { return "k3s" }

var (
	exact  = regexp.MustCompile(`^v\d+\.\d+\.\d+(?:-rc\d+)?\+k3s\d+$`)
	inText = regexp.MustCompile(`v\d+\.\d+\.\d+(?:-rc\d+)?\+k3s\d+`)
)

// Match selects YAML and install scripts.
func (Extractor) Match(p string) bool {
	if yamlpos.IsYAML(p) {
		return true
	}
	switch path.Ext(p) {
	case ".sh", ".bash", ".ipxe", ".service", ".env", ".cfg", ".ks":
		return true
	}
	return false
}

// Extract returns the file's k3s pins.
func (e Extractor) Extract(p string, content []byte) ([]bot.Dependency, error) {
	if !yamlpos.HasAny(content, "+k3s") {
		return nil, nil
	}
	if !yamlpos.IsYAML(p) {
		return e.text(p, content), nil
	}
	f, err := yamlpos.Parse(content)
	if err != nil {
		return nil, err
	}
	var out []bot.Dependency
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.ScalarNode:
			if exact.MatchString(n.Value) {
				if rng, ok := f.ScalarRange(n); ok {
					out = append(out, dep(p, e.Name(), n.Value, rng))
				}
			}
		}
	}
	for _, doc := range f.Docs {
		walk(doc)
	}
	return out, nil
}

// text handles scripts: one dependency per distinct version, anchored at
// INSTALL_K3S_VERSION when present, with every other mention related.
func (e Extractor) text(p string, content []byte) []bot.Dependency {
	locs := inText.FindAllIndex(content, -1)
	byVersion := map[string][][]int{}
	var order []string
	for _, l := range locs {
		// A version glued to more version characters is something else.
		if l[1] < len(content) && isVersionByte(content[l[1]]) {
			continue
		}
		v := string(content[l[0]:l[1]])
		if _, seen := byVersion[v]; !seen {
			order = append(order, v)
		}
		byVersion[v] = append(byVersion[v], l)
	}
	var out []bot.Dependency
	for _, v := range order {
		ls := byVersion[v]
		primary := 0
		for i, l := range ls {
			pre := strings.TrimRight(string(content[max(0, l[0]-24):l[0]]), `"'`)
			if strings.HasSuffix(pre, "INSTALL_K3S_VERSION=") {
				primary = i
				break
			}
		}
		d := dep(p, e.Name(), v, bot.Range{Start: ls[primary][0], End: ls[primary][1]})
		for i, l := range ls {
			if i == primary {
				continue
			}
			if d.Related == nil {
				d.Related = map[string]bot.Range{}
			}
			d.Related[fmt.Sprintf("version@%d", l[0])] = bot.Range{Start: l[0], End: l[1]}
		}
		out = append(out, d)
	}
	return out
}

func isVersionByte(b byte) bool { return b >= '0' && b <= '9' || b == '.' }

func dep(file, manager, v string, rng bot.Range) bot.Dependency {
	return bot.Dependency{
		File: file, Manager: manager, Datasource: Datasource, Package: Package,
		Versioning: Versioning, Current: v, Range: rng,
	}
}
