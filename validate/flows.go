package validate

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/flows"
	"hl.dev/hl/templates"
)

// FlowCheck is one connection of the flow matrix (templates/flows.yaml)
// made concrete for a homelab: a pod or an address on each side, one port.
type FlowCheck struct {
	// Flow is the declaration the check comes from; Need says whether it
	// must be allowed (need) or denied (deny).
	Flow     templates.Flow
	Need     bool
	From, To NetPeer
	Port     NetPort
}

func (c FlowCheck) String() string {
	verb := "needs"
	if !c.Need {
		verb = "must not have"
	}
	return fmt.Sprintf("%q %s %s → %s on %s", c.Flow.Why, verb, c.From, c.To, c.Port)
}

// FlowChecks expands the flow matrix for a homelab: flows whose
// components are off or whose conditions do not hold are dropped;
// components and layers become their namespaces' pods; peers become
// hl.yaml's addresses; symbolic ports its ports (internal/flows). A pod
// endpoint without labels stands for every pod of the namespace: one
// check for an unlabelled pod and one for each label set a policy of the
// namespace selects pods by, so a rule for some pods only cannot hide.
func FlowChecks(h *config.Homelab, pols *NetworkPolicies) ([]FlowCheck, error) {
	fl, err := templates.LoadFlows()
	if err != nil {
		return nil, err
	}
	env, err := flows.NewEnv(h)
	if err != nil {
		return nil, err
	}
	clusterCIDR := h.Spec.Kubernetes.ClusterCIDR
	if clusterCIDR == "" {
		clusterCIDR = config.DefaultClusterCIDR
	}
	pfx, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("spec.kubernetes.clusterCIDR: %w", err)
	}
	podIP := pfx.Masked().Addr().Next().Next()
	peers := func(e templates.Endpoint) ([]NetPeer, error) {
		if e.Peer != "" {
			addrs, err := env.Addresses(e.Peer)
			out := make([]NetPeer, len(addrs))
			for i, a := range addrs {
				out[i] = NetPeer{IP: a}
			}
			return out, err
		}
		var out []NetPeer
		for _, ns := range env.Namespaces(e) {
			if len(e.Pods) > 0 {
				out = append(out, NetPeer{Namespace: ns, Labels: e.Pods, IP: podIP})
				continue
			}
			out = append(out, NetPeer{Namespace: ns, Labels: map[string]string{}, IP: podIP})
			for _, l := range pols.selectedLabels(ns) {
				out = append(out, NetPeer{Namespace: ns, Labels: l, IP: podIP})
			}
		}
		return out, nil
	}

	var out []FlowCheck
	for _, group := range []struct {
		flows []templates.Flow
		need  bool
	}{{fl.Need, true}, {fl.Deny, false}} {
		for _, f := range group.flows {
			if !env.Applies(f) {
				continue
			}
			froms, err := peers(f.From)
			if err != nil {
				return nil, fmt.Errorf("flow %q: from: %w", f.Why, err)
			}
			tos, err := peers(f.To)
			if err != nil {
				return nil, fmt.Errorf("flow %q: to: %w", f.Why, err)
			}
			ports := []NetPort{{}} // a deny without ports: every port
			if len(f.Ports) > 0 {
				ps, err := env.Ports(f.Ports)
				if err != nil {
					return nil, fmt.Errorf("flow %q: %w", f.Why, err)
				}
				ports = ports[:0]
				for _, p := range ps {
					ports = append(ports, NetPort(p))
				}
			}
			for _, from := range froms {
				for _, to := range tos {
					for _, p := range ports {
						out = append(out, FlowCheck{Flow: f, Need: group.need, From: from, To: to, Port: p})
					}
				}
			}
		}
	}
	return out, nil
}

// selectedLabels are the label sets policies of a namespace select pods
// by (matchLabels only), each once, in a stable order.
func (n *NetworkPolicies) selectedLabels(ns string) []map[string]string {
	seen := map[string]bool{}
	var out []map[string]string
	for _, p := range n.policies {
		if p.namespace != ns || len(p.selector.match) == 0 {
			continue
		}
		key := templates.Labels(p.selector.match)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, maps.Clone(p.selector.match))
	}
	slices.SortFunc(out, func(a, b map[string]string) int {
		return strings.Compare(templates.Labels(a), templates.Labels(b))
	})
	return out
}

// FlowResult is a check whose outcome is not what the matrix declares.
type FlowResult struct {
	Check   FlowCheck
	Verdict NetVerdict
}

func (r FlowResult) String() string {
	return r.Check.String() + ": " + r.Verdict.Reason()
}

// CheckFlows evaluates every check and returns those that fail: a needed
// flow the policies deny, or a denied flow they allow.
func CheckFlows(pols *NetworkPolicies, checks []FlowCheck) []FlowResult {
	var out []FlowResult
	for _, c := range checks {
		v := pols.Allowed(c.From, c.To, c.Port)
		if v.Allowed != c.Need {
			out = append(out, FlowResult{c, v})
		}
	}
	return out
}
