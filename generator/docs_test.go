package generator

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/flows"
	"hl.dev/hl/templates"
)

var (
	mermaidEdge  = regexp.MustCompile(`^  ([A-Za-z0-9_]+) -->\|"([^"]*)"\| ([A-Za-z0-9_]+)$`)
	mermaidNode  = regexp.MustCompile(`^ {2,4}([A-Za-z0-9_]+)(\[|\(\[|\(\()"[^"]*"(\]|\]\)|\)\))$`)
	mermaidGroup = regexp.MustCompile(`^  subgraph ([A-Za-z0-9_]+) \["[^"]*"\]$`)
)

// The architecture diagram is a well-formed Mermaid flowchart of exactly
// the enabled components: every edge's ends declared, each node and edge
// once, the same bytes every time; and every needed flow between two
// enabled components that flows.yaml applies to the homelab is an edge
// with all of the flow's ports, so the picture cannot leave out what the
// NetworkPolicies open.
func TestFlowDiagram(t *testing.T) {
	fl, err := templates.LoadFlows()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"minimal", "single-node", "ha", "full"} {
		t.Run(name, func(t *testing.T) {
			doc, _, err := config.Load(fixture(name))
			if err != nil {
				t.Fatal(err)
			}
			d, err := newData(doc.Homelab)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.FlowDiagram()
			if err != nil {
				t.Fatal(err)
			}
			again, _ := d.FlowDiagram()
			if got != again {
				t.Fatal("two diagrams of the same homelab differ")
			}
			lines := strings.Split(got, "\n")
			if lines[0] != "flowchart LR" {
				t.Fatalf("first line %q", lines[0])
			}
			declared := map[string]bool{}
			edges := map[[2]string]string{}
			var order []string
			depth := 0
			for i, l := range lines[1:] {
				switch m, n, e := mermaidGroup.FindStringSubmatch(l), mermaidNode.FindStringSubmatch(l), mermaidEdge.FindStringSubmatch(l); {
				case m != nil:
					depth++
					if declared[m[1]] {
						t.Errorf("line %d: %s declared twice", i+2, m[1])
					}
					declared[m[1]] = true
				case l == "  end":
					depth--
				case n != nil:
					if declared[n[1]] {
						t.Errorf("line %d: %s declared twice", i+2, n[1])
					}
					declared[n[1]] = true
					order = append(order, n[1])
				case e != nil:
					for _, end := range []string{e[1], e[3]} {
						if !declared[end] {
							t.Errorf("line %d: edge end %s is not declared before it", i+2, end)
						}
					}
					k := [2]string{e[1], e[3]}
					if _, dup := edges[k]; dup {
						t.Errorf("line %d: two edges %s -> %s", i+2, k[0], k[1])
					}
					edges[k] = e[2]
				default:
					t.Errorf("line %d: not a node, group or edge: %q", i+2, l)
				}
			}
			if depth != 0 {
				t.Errorf("subgraphs not closed: depth %d", depth)
			}
			for _, c := range d.Catalog.Components {
				if d.Components[c.Name].Enabled != declared[mermaidID(c.Name)] {
					t.Errorf("component %s: enabled %t, in the diagram %t", c.Name, d.Components[c.Name].Enabled, declared[mermaidID(c.Name)])
				}
			}
			env, err := flows.NewEnv(doc.Homelab)
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, f := range fl.Need {
				if f.From.Component == "" || f.To.Component == "" || f.From.Component == "*" || f.From.Component == f.To.Component || !env.Applies(f) {
					continue
				}
				label, ok := edges[[2]string{mermaidID(f.From.Component), mermaidID(f.To.Component)}]
				if !ok {
					t.Errorf("flow %q (%s -> %s) has no edge", f.Why, f.From.Component, f.To.Component)
					continue
				}
				ports, err := env.Ports(f.Ports)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range ports {
					if !strings.Contains(" "+label+" ", fmt.Sprintf(" %d/%s ", p.Number, p.Protocol)) {
						t.Errorf("flow %q: edge %s -> %s lacks port %d/%s (label %q)", f.Why, f.From.Component, f.To.Component, p.Number, p.Protocol, label)
					}
				}
				checked++
			}
			if checked == 0 {
				t.Error("no flow between two components applies: the check above checked nothing")
			}
		})
	}
}

func TestMermaidIDAndLabel(t *testing.T) {
	for _, tc := range []struct{ in, id, label string }{
		{"cert-manager", "cert_manager", `"cert-manager"`},
		{"kube-system", "kube_system", `"kube-system"`},
		{`say "hi"`, "say__hi_", `"say #quot;hi#quot;"`},
	} {
		if got := mermaidID(tc.in); got != tc.id {
			t.Errorf("mermaidID(%q) = %q, want %q", tc.in, got, tc.id)
		}
		if got := mermaidLabel(tc.in); got != tc.label {
			t.Errorf("mermaidLabel(%q) = %q, want %q", tc.in, got, tc.label)
		}
	}
}
