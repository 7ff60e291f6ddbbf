package templates

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed flows.yaml
var flowsYAML []byte

// Flows is flows.yaml: the network flows each component needs (Need) and
// those that must stay closed (Deny). validate evaluates the rendered
// NetworkPolicies against them.
type Flows struct {
	Need []Flow `yaml:"need"`
	Deny []Flow `yaml:"deny"`
}

// Flow is one declared flow: from an endpoint to another on some ports.
type Flow struct {
	// Why says what the flow is for; it names the flow in test failures.
	Why  string   `yaml:"why"`
	From Endpoint `yaml:"from"`
	To   Endpoint `yaml:"to"`
	// Ports are "<port>/<protocol>", "<name>:<port>/<protocol>" or a
	// symbolic "pxe/TCP" or "alerting/TCP"; empty on a deny means every
	// port.
	Ports []string `yaml:"ports,omitempty"`
	// When lists further conditions: component names, or forge-in-cluster.
	When []string `yaml:"when,omitempty"`
}

// Endpoint is one side of a flow: pods of a component or namespace, or a
// peer outside the pod network.
type Endpoint struct {
	// Component is a catalog component ("*": each enabled one).
	Component string `yaml:"component,omitempty"`
	// Layer stands for each enabled component of the layer.
	Layer string `yaml:"layer,omitempty"`
	// Namespace is a namespace no component owns (kube-system).
	Namespace string `yaml:"namespace,omitempty"`
	// Pods are the labels of the pods meant.
	Pods map[string]string `yaml:"pods,omitempty"`
	// Peer is internet, lan, nodes, apiserver or pxe.
	Peer string `yaml:"peer,omitempty"`
}

// Peers a flow endpoint may name besides pods.
var Peers = []string{"internet", "lan", "nodes", "apiserver", "pxe", "dns"}

// Conditions are the when values that are not component names.
var Conditions = []string{"forge-in-cluster", "dns-rfc2136"}

// String renders the endpoint for messages: "woodpecker{hl.dev/role=pipeline}",
// "peer:nodes".
func (e Endpoint) String() string {
	var b strings.Builder
	switch {
	case e.Peer != "":
		return "peer:" + e.Peer
	case e.Component != "":
		b.WriteString(e.Component)
	case e.Layer != "":
		b.WriteString("layer:" + e.Layer)
	default:
		b.WriteString("ns:" + e.Namespace)
	}
	b.WriteString(Labels(e.Pods))
	return b.String()
}

// Labels renders a label set as {k=v,...}, keys sorted; "" for none.
func Labels(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

var (
	flowsOnce sync.Once
	flows     *Flows
	flowsErr  error
)

// LoadFlows parses the embedded flows.yaml (strictly: an unknown field is
// an error) and checks every endpoint against the catalog.
func LoadFlows() (*Flows, error) {
	flowsOnce.Do(func() { flows, flowsErr = parseFlows(flowsYAML) })
	return flows, flowsErr
}

func parseFlows(data []byte) (*Flows, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f Flows
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("flows.yaml: %w", err)
	}
	cat, err := LoadCatalog()
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	layers := map[string]bool{}
	for _, c := range cat.Components {
		known[c.Name] = true
		layers[c.Layer] = true
	}
	check := func(list string, i int, fl Flow) error {
		where := fmt.Sprintf("flows.yaml: %s[%d] (%s)", list, i, fl.Why)
		if fl.Why == "" {
			return fmt.Errorf("flows.yaml: %s[%d]: no why", list, i)
		}
		for side, e := range map[string]Endpoint{"from": fl.From, "to": fl.To} {
			set := 0
			for _, s := range []string{e.Component, e.Layer, e.Namespace, e.Peer} {
				if s != "" {
					set++
				}
			}
			switch {
			case set != 1:
				return fmt.Errorf("%s: %s needs exactly one of component, layer, namespace, peer", where, side)
			case e.Component != "" && e.Component != "*" && !known[e.Component]:
				return fmt.Errorf("%s: %s: unknown component %q", where, side, e.Component)
			case e.Layer != "" && !layers[e.Layer]:
				return fmt.Errorf("%s: %s: unknown layer %q", where, side, e.Layer)
			case e.Peer != "" && !slices.Contains(Peers, e.Peer):
				return fmt.Errorf("%s: %s: unknown peer %q (one of %s)", where, side, e.Peer, strings.Join(Peers, ", "))
			case e.Peer != "" && len(e.Pods) > 0:
				return fmt.Errorf("%s: %s: a peer has no pods", where, side)
			}
		}
		if list == "need" && len(fl.Ports) == 0 {
			return fmt.Errorf("%s: a needed flow names its ports", where)
		}
		for _, w := range fl.When {
			if !slices.Contains(Conditions, w) && !known[w] {
				return fmt.Errorf("%s: unknown condition %q", where, w)
			}
		}
		return nil
	}
	for i, fl := range f.Need {
		if err := check("need", i, fl); err != nil {
			return nil, err
		}
	}
	for i, fl := range f.Deny {
		if err := check("deny", i, fl); err != nil {
			return nil, err
		}
	}
	return &f, nil
}
