package generator

import (
	"fmt"
	"slices"
	"strings"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/flows"
	"hl.dev/hl/templates"
)

// The rendered docs/architecture.md draws the homelab's components and
// the flows between them as a Mermaid flowchart. It is written from the
// same matrix the NetworkPolicies are (templates/flows.yaml made concrete
// by internal/flows), so the picture cannot show a path the policies
// close, nor miss one they open. One edge per pair of ends, its ports
// merged; flows inside one component are left out (they are the
// component's own business, not its architecture).

// diagramEveryone is the node that stands for component "*".
const diagramEveryone = "every_component"

// peerTitles name the peers outside the pod network in the diagram.
var peerTitles = map[string]string{
	"internet":  "internet",
	"lan":       "home network (router)",
	"nodes":     "nodes",
	"apiserver": "Kubernetes API",
	"pxe":       "hl metal serve (PXE host)",
}

// FlowDiagram returns the Mermaid flowchart (without the code fence) of
// the enabled components, grouped by layer, and every needed flow of
// templates/flows.yaml that applies to this homelab.
func (d *Data) FlowDiagram() (string, error) {
	fl, err := templates.LoadFlows()
	if err != nil {
		return "", err
	}
	env, err := flows.NewEnv(d.Homelab)
	if err != nil {
		return "", err
	}
	type edge struct {
		from, to string
		ports    []flows.Port
	}
	var edges []*edge
	byEnds := map[[2]string]*edge{}
	peers := map[string]bool{}
	namespaces := map[string]bool{}
	everyone := false
	id := func(e templates.Endpoint) string {
		switch {
		case e.Peer != "":
			peers[e.Peer] = true
			return "peer_" + e.Peer
		case e.Component == "*":
			everyone = true
			return diagramEveryone
		case e.Component != "":
			return mermaidID(e.Component)
		case e.Layer != "":
			return "layer_" + e.Layer
		}
		namespaces[e.Namespace] = true
		return "ns_" + mermaidID(e.Namespace)
	}
	for _, f := range fl.Need {
		if !env.Applies(f) {
			continue
		}
		if f.From.Component != "" && f.From.Component == f.To.Component {
			continue
		}
		if !d.layerOn(f.From) || !d.layerOn(f.To) {
			continue // a layer with nothing enabled has no box to draw from
		}
		ports, err := env.Ports(f.Ports)
		if err != nil {
			return "", fmt.Errorf("flow %q: %w", f.Why, err)
		}
		if len(ports) == 0 {
			continue // symbolic ports with nothing behind them (no alert receiver)
		}
		key := [2]string{id(f.From), id(f.To)}
		e := byEnds[key]
		if e == nil {
			e = &edge{from: key[0], to: key[1]}
			byEnds[key] = e
			edges = append(edges, e)
		}
		for _, p := range ports {
			p.Name = "" // a named port is the same port in the picture
			if !slices.Contains(e.ports, p) {
				e.ports = append(e.ports, p)
			}
		}
	}

	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, l := range layers {
		var members []*Component
		for _, c := range d.Enabled {
			if c.Layer == l {
				members = append(members, c)
			}
		}
		if len(members) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  subgraph layer_%s [%s]\n", l, mermaidLabel(l+"/"))
		for _, c := range members {
			fmt.Fprintf(&b, "    %s[%s]\n", mermaidID(c.Name), mermaidLabel(c.Title))
		}
		b.WriteString("  end\n")
	}
	for _, ns := range sortedSet(namespaces) {
		fmt.Fprintf(&b, "  ns_%s[%s]\n", mermaidID(ns), mermaidLabel(ns))
	}
	if everyone {
		fmt.Fprintf(&b, "  %s([%s])\n", diagramEveryone, mermaidLabel("every component"))
	}
	for _, p := range templates.Peers {
		if peers[p] {
			fmt.Fprintf(&b, "  peer_%s((%s))\n", p, mermaidLabel(peerTitles[p]))
		}
	}
	// Edges keep flows.yaml's order (the matrix is written by topic),
	// which is as deterministic as a sort and easier to read next to it.
	for _, e := range edges {
		slices.SortFunc(e.ports, func(a, b flows.Port) int {
			if a.Number != b.Number {
				return a.Number - b.Number
			}
			return strings.Compare(a.Protocol, b.Protocol)
		})
		label := make([]string, len(e.ports))
		for i, p := range e.ports {
			label[i] = fmt.Sprintf("%d/%s", p.Number, p.Protocol)
		}
		fmt.Fprintf(&b, "  %s -->|%s| %s\n", e.from, mermaidLabel(strings.Join(label, " ")), e.to)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// layerOn reports whether a layer endpoint has an enabled component
// (any other endpoint: true).
func (d *Data) layerOn(e templates.Endpoint) bool {
	if e.Layer == "" {
		return true
	}
	return slices.ContainsFunc(d.Enabled, func(c *Component) bool { return c.Layer == e.Layer })
}

// mermaidID makes a name a Mermaid node id: letters, digits and
// underscores only (a hyphen would read as the start of an arrow).
func mermaidID(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

// mermaidLabel quotes a label; Mermaid has no backslash escapes, a quote
// is the entity #quot;.
func mermaidLabel(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, "#quot;") + `"`
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// EnabledComponents are the homelab's enabled components as the templates
// see them (layer order, then catalog order), with their hostnames and
// URLs: what hl up's summary lists.
func EnabledComponents(h *config.Homelab) ([]*Component, error) {
	d, err := newData(h)
	if err != nil {
		return nil, err
	}
	return d.Enabled, nil
}
