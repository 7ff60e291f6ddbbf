package generator

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"

	"hl.dev/hl/internal/flows"
	"hl.dev/hl/templates"
)

// NetworkPolicy rules written from templates/flows.yaml, so a flow is
// declared once and the policy follows it; validate's flow test holds
// every rendered policy, written this way or by hand, to the same matrix.

// FlowEgress returns the egress rules (a YAML list, one rule per flow)
// that the needed flows from the pods of component with the given labels
// ("key=value") to hosts of the home network — hl metal serve, the
// nodes, the API server, the router — call for: each host as a /32
// ipBlock (/128 for IPv6), with the flow's ports. Flows to pods and to
// the internet are not written here: the templates hand-write those next
// to their exceptions.
func (d *Data) FlowEgress(component string, labels ...string) (string, error) {
	return d.flowRules(component, labels, true)
}

// FlowIngress returns the ingress rules (a YAML list, one rule per flow)
// that the needed flows from pods to the pods of component with the given
// labels call for: each source as a namespaceSelector by name and, when
// the flow names them, a podSelector by its labels.
func (d *Data) FlowIngress(component string, labels ...string) (string, error) {
	return d.flowRules(component, labels, false)
}

func (d *Data) flowRules(component string, labels []string, egress bool) (string, error) {
	pods := map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return "", fmt.Errorf("flow rules for %s: label %q is not key=value", component, l)
		}
		pods[k] = v
	}
	fl, err := templates.LoadFlows()
	if err != nil {
		return "", err
	}
	env, err := flows.NewEnv(d.Homelab)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range fl.Need {
		self, other := f.To, f.From
		if egress {
			self, other = f.From, f.To
		}
		if self.Component != component || !maps.Equal(self.Pods, pods) || !env.Applies(f) {
			continue
		}
		var peers []string
		switch {
		case egress && other.Peer != "" && other.Peer != "internet":
			addrs, err := env.Addresses(other.Peer)
			if err != nil {
				return "", fmt.Errorf("flow %q: %w", f.Why, err)
			}
			for _, a := range addrs {
				cidr, err := yamlQuote(netip.PrefixFrom(a, a.BitLen()).String())
				if err != nil {
					return "", err
				}
				peers = append(peers, "- ipBlock: {cidr: "+cidr+"}")
			}
		case !egress && other.Peer == "":
			for _, ns := range env.Namespaces(other) {
				peer := "- namespaceSelector:\n    matchLabels: {kubernetes.io/metadata.name: " + ns + "}"
				if len(other.Pods) > 0 {
					peer += "\n  podSelector:\n    matchLabels: " + flowLabels(other.Pods)
				}
				peers = append(peers, peer)
			}
		default:
			continue
		}
		ports, err := env.Ports(f.Ports)
		if err != nil {
			return "", fmt.Errorf("flow %q: %w", f.Why, err)
		}
		if len(peers) == 0 || len(ports) == 0 {
			continue
		}
		key := "from"
		if egress {
			key = "to"
		}
		fmt.Fprintf(&b, "# %s (templates/flows.yaml)\n- %s:\n", f.Why, key)
		for _, p := range peers {
			b.WriteString(indent(4, p) + "\n")
		}
		b.WriteString("  ports:\n")
		for _, p := range ports {
			fmt.Fprintf(&b, "    - {port: %d, protocol: %s}\n", p.Number, p.Protocol)
		}
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// flowLabels writes a label set in flow style, keys sorted.
func flowLabels(m map[string]string) string {
	l := templates.Labels(m) // {k=v,...}
	return strings.NewReplacer("=", ": ", ",", ", ").Replace(l)
}
