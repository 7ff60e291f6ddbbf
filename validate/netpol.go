package validate

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// NetPeer is one end of a connection as NetworkPolicies see it: a pod
// (Namespace set, with its labels and address) or an address outside the
// pod network (Namespace empty).
type NetPeer struct {
	Namespace string
	Labels    map[string]string
	IP        netip.Addr
}

func (p NetPeer) String() string {
	if p.Namespace == "" {
		return p.IP.String()
	}
	var keys []string
	for k := range p.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + p.Labels[k]
	}
	return p.Namespace + "/{" + strings.Join(keys, ",") + "}"
}

// NetPort is the destination port of a connection. Number 0 stands for
// every port: a query with it asks whether any port is open (Protocol ""
// then means any protocol too). Name is the container port's name, which
// a policy may use instead of the number.
type NetPort struct {
	Number   int
	Name     string
	Protocol string
}

func (p NetPort) String() string {
	if p.Number == 0 {
		return "any port"
	}
	return strconv.Itoa(p.Number) + "/" + p.Protocol
}

// RuleRef names one ingress or egress rule of a rendered NetworkPolicy.
type RuleRef struct {
	Namespace, Policy string
	// Direction is "ingress" or "egress"; Index the rule's position.
	Direction string
	Index     int
	File      string
}

func (r RuleRef) String() string {
	return fmt.Sprintf("%s/%s %s[%d] (%s)", r.Namespace, r.Policy, r.Direction, r.Index, r.File)
}

// NetVerdict is the evaluation of one connection: allowed only when the
// source's egress and the destination's ingress both allow it.
type NetVerdict struct {
	Allowed bool
	Egress  NetSide
	Ingress NetSide
}

// NetSide is one side's decision: not isolated (no policy selects the
// pod, or the end is not a pod: everything allowed), or isolated and
// allowed by the rules in By.
type NetSide struct {
	Isolated bool
	Allowed  bool
	By       []RuleRef
}

// Reason says which side denies, for a failure message.
func (v NetVerdict) Reason() string {
	var why []string
	if !v.Egress.Allowed {
		why = append(why, "the source's egress denies it")
	}
	if !v.Ingress.Allowed {
		why = append(why, "the destination's ingress denies it")
	}
	if len(why) == 0 {
		var by []string
		for _, r := range append(append([]RuleRef(nil), v.Egress.By...), v.Ingress.By...) {
			by = append(by, r.String())
		}
		if len(by) == 0 {
			return "allowed: no policy isolates either end"
		}
		return "allowed by " + strings.Join(by, ", ")
	}
	return strings.Join(why, " and ")
}

// NetworkPolicies evaluates connections against a rendered repository's
// NetworkPolicies with Kubernetes semantics: a pod selected by a policy
// of a direction is isolated in it and accepts only what the union of
// those policies' rules allows; a connection needs both the source's
// egress and the destination's ingress. ipBlocks match any address,
// pods' included (the behaviour of k3s's kube-router policy controller);
// namespaces carry kubernetes.io/metadata.name and the labels of their
// rendered Namespace object.
type NetworkPolicies struct {
	policies []netPolicy
	nsLabels map[string]map[string]string
}

type netPolicy struct {
	namespace, name, file string
	selector              labelSelector
	ingress, egress       bool // the directions the policy isolates
	in, out               []netRule
}

type netRule struct {
	index int
	all   bool // no from/to: every peer
	peers []netPeerSel
	ports []netPortSel // none: every port
}

type netPeerSel struct {
	ipBlock *ipBlock
	ns, pod *labelSelector // nil ns: the policy's namespace; nil pod: every pod
}

type ipBlock struct {
	cidr   netip.Prefix
	except []netip.Prefix
}

type netPortSel struct {
	protocol string
	number   int
	name     string
	end      int
}

type labelSelector struct {
	match map[string]string
	exprs []labelExpr
}

type labelExpr struct {
	key, op string
	values  []string
}

// NewNetworkPolicies reads every NetworkPolicy and Namespace of a
// rendered repository (Render's manifests).
func NewNetworkPolicies(ms []Manifest) (*NetworkPolicies, error) {
	n := &NetworkPolicies{nsLabels: map[string]map[string]string{}}
	for _, m := range ms {
		kind, _ := m.Object["kind"].(string)
		md, _ := m.Object["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		switch kind {
		case "Namespace":
			labels := map[string]string{}
			for k, v := range asMap(md["labels"]) {
				labels[k] = fmt.Sprint(v)
			}
			n.nsLabels[name] = labels
		case "NetworkPolicy":
			ns, _ := md["namespace"].(string)
			p, err := parseNetPolicy(ns, name, m.File, asMap(m.Object["spec"]))
			if err != nil {
				return nil, fmt.Errorf("%s: NetworkPolicy %s/%s: %w", m.File, ns, name, err)
			}
			n.policies = append(n.policies, p)
		}
	}
	return n, nil
}

// Rules lists every ingress and egress rule, in rendering order.
func (n *NetworkPolicies) Rules() []RuleRef {
	var out []RuleRef
	for _, p := range n.policies {
		for _, r := range p.in {
			out = append(out, RuleRef{p.namespace, p.name, "ingress", r.index, p.file})
		}
		for _, r := range p.out {
			out = append(out, RuleRef{p.namespace, p.name, "egress", r.index, p.file})
		}
	}
	return out
}

// Without returns the policies with one rule removed (the policy keeps
// isolating its pods).
func (n *NetworkPolicies) Without(ref RuleRef) *NetworkPolicies {
	out := &NetworkPolicies{nsLabels: n.nsLabels, policies: make([]netPolicy, len(n.policies))}
	drop := func(rules []netRule) []netRule {
		var kept []netRule
		for _, r := range rules {
			if r.index != ref.Index {
				kept = append(kept, r)
			}
		}
		return kept
	}
	for i, p := range n.policies {
		if p.namespace == ref.Namespace && p.name == ref.Policy && p.file == ref.File {
			if ref.Direction == "ingress" {
				p.in = drop(p.in)
			} else {
				p.out = drop(p.out)
			}
		}
		out.policies[i] = p
	}
	return out
}

// Allowed evaluates a connection from one peer to another on a port.
func (n *NetworkPolicies) Allowed(from, to NetPeer, port NetPort) NetVerdict {
	v := NetVerdict{
		Egress:  NetSide{Allowed: true},
		Ingress: NetSide{Allowed: true},
	}
	if from.Namespace != "" {
		v.Egress = n.side(from, to, port, false)
	}
	if to.Namespace != "" {
		v.Ingress = n.side(to, from, port, true)
	}
	v.Allowed = v.Egress.Allowed && v.Ingress.Allowed
	return v
}

// side decides for the pod self whether its policies of one direction
// allow the connection with other on port.
func (n *NetworkPolicies) side(self, other NetPeer, port NetPort, ingress bool) NetSide {
	var s NetSide
	for _, p := range n.policies {
		if p.namespace != self.Namespace || !p.selector.matches(self.Labels) {
			continue
		}
		rules, dir := p.out, "egress"
		if ingress {
			if !p.ingress {
				continue
			}
			rules, dir = p.in, "ingress"
		} else if !p.egress {
			continue
		}
		s.Isolated = true
		for _, r := range rules {
			if n.ruleMatches(p, r, other, port) {
				s.By = append(s.By, RuleRef{p.namespace, p.name, dir, r.index, p.file})
			}
		}
	}
	s.Allowed = !s.Isolated || len(s.By) > 0
	return s
}

func (n *NetworkPolicies) ruleMatches(p netPolicy, r netRule, peer NetPeer, port NetPort) bool {
	if len(r.ports) > 0 {
		ok := false
		for _, ps := range r.ports {
			if ps.matches(port) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.all {
		return true
	}
	for _, ps := range r.peers {
		if ps.ipBlock != nil {
			if peer.IP.IsValid() && ps.ipBlock.contains(peer.IP) {
				return true
			}
			continue
		}
		if peer.Namespace == "" {
			continue
		}
		if ps.ns == nil {
			if peer.Namespace != p.namespace {
				continue
			}
		} else if !ps.ns.matches(n.namespaceLabels(peer.Namespace)) {
			continue
		}
		if ps.pod == nil || ps.pod.matches(peer.Labels) {
			return true
		}
	}
	return false
}

func (n *NetworkPolicies) namespaceLabels(ns string) map[string]string {
	out := map[string]string{"kubernetes.io/metadata.name": ns}
	for k, v := range n.nsLabels[ns] {
		out[k] = v
	}
	return out
}

func (b *ipBlock) contains(ip netip.Addr) bool {
	if !b.cidr.Contains(ip) {
		return false
	}
	for _, e := range b.except {
		if e.Contains(ip) {
			return false
		}
	}
	return true
}

func (ps netPortSel) matches(q NetPort) bool {
	if q.Protocol != "" && ps.protocol != q.Protocol {
		return false
	}
	switch {
	case q.Number == 0 || (ps.number == 0 && ps.name == ""):
		return true
	case ps.name != "":
		return ps.name == q.Name
	case ps.end > 0:
		return q.Number >= ps.number && q.Number <= ps.end
	default:
		return q.Number == ps.number
	}
}

func (s labelSelector) matches(labels map[string]string) bool {
	for k, v := range s.match {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.exprs {
		got, ok := labels[e.key]
		in := false
		for _, v := range e.values {
			if ok && got == v {
				in = true
			}
		}
		switch e.op {
		case "In":
			if !in {
				return false
			}
		case "NotIn":
			if in {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		}
	}
	return true
}

func parseNetPolicy(ns, name, file string, spec map[string]any) (netPolicy, error) {
	p := netPolicy{namespace: ns, name: name, file: file}
	sel, err := parseSelector(spec["podSelector"])
	if err != nil {
		return p, fmt.Errorf("spec.podSelector: %w", err)
	}
	p.selector = *sel
	types, hasTypes := spec["policyTypes"].([]any)
	if hasTypes {
		for _, t := range types {
			switch t {
			case "Ingress":
				p.ingress = true
			case "Egress":
				p.egress = true
			default:
				return p, fmt.Errorf("spec.policyTypes: unknown %v", t)
			}
		}
	} else {
		// The API server's default: Ingress always, Egress when there are
		// egress rules.
		p.ingress = true
		_, p.egress = spec["egress"]
	}
	for _, dir := range []string{"ingress", "egress"} {
		peersKey := "from"
		if dir == "egress" {
			peersKey = "to"
		}
		list, _ := spec[dir].([]any)
		for i, raw := range list {
			r, err := parseRule(i, asMap(raw), peersKey)
			if err != nil {
				return p, fmt.Errorf("spec.%s[%d]: %w", dir, i, err)
			}
			if dir == "ingress" {
				p.in = append(p.in, r)
			} else {
				p.out = append(p.out, r)
			}
		}
	}
	return p, nil
}

func parseRule(i int, m map[string]any, peersKey string) (netRule, error) {
	r := netRule{index: i}
	peers, _ := m[peersKey].([]any)
	r.all = len(peers) == 0
	for j, raw := range peers {
		pm := asMap(raw)
		var ps netPeerSel
		if ib, ok := pm["ipBlock"]; ok {
			b, err := parseIPBlock(asMap(ib))
			if err != nil {
				return r, fmt.Errorf("%s[%d].ipBlock: %w", peersKey, j, err)
			}
			ps.ipBlock = b
		}
		if v, ok := pm["namespaceSelector"]; ok {
			s, err := parseSelector(v)
			if err != nil {
				return r, fmt.Errorf("%s[%d].namespaceSelector: %w", peersKey, j, err)
			}
			ps.ns = s
		}
		if v, ok := pm["podSelector"]; ok {
			s, err := parseSelector(v)
			if err != nil {
				return r, fmt.Errorf("%s[%d].podSelector: %w", peersKey, j, err)
			}
			ps.pod = s
		}
		if ps.ipBlock == nil && ps.ns == nil && ps.pod == nil {
			return r, fmt.Errorf("%s[%d]: empty peer", peersKey, j)
		}
		if ps.ipBlock != nil && (ps.ns != nil || ps.pod != nil) {
			return r, fmt.Errorf("%s[%d]: ipBlock with a selector", peersKey, j)
		}
		r.peers = append(r.peers, ps)
	}
	ports, _ := m["ports"].([]any)
	for j, raw := range ports {
		pm := asMap(raw)
		ps := netPortSel{protocol: "TCP"}
		if s, ok := pm["protocol"].(string); ok {
			ps.protocol = s
		}
		switch v := pm["port"].(type) {
		case nil:
		case string:
			if num, err := strconv.Atoi(v); err == nil {
				ps.number = num
			} else {
				ps.name = v
			}
		default:
			num, err := strconv.Atoi(fmt.Sprint(v))
			if err != nil {
				return r, fmt.Errorf("ports[%d].port: %v", j, v)
			}
			ps.number = num
		}
		if v, ok := pm["endPort"]; ok {
			end, err := strconv.Atoi(fmt.Sprint(v))
			if err != nil || ps.name != "" || ps.number == 0 {
				return r, fmt.Errorf("ports[%d].endPort: %v", j, v)
			}
			ps.end = end
		}
		r.ports = append(r.ports, ps)
	}
	return r, nil
}

func parseIPBlock(m map[string]any) (*ipBlock, error) {
	cidr, _ := m["cidr"].(string)
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("cidr: %w", err)
	}
	b := &ipBlock{cidr: p}
	except, _ := m["except"].([]any)
	for _, e := range except {
		s, _ := e.(string)
		ep, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("except: %w", err)
		}
		b.except = append(b.except, ep)
	}
	return b, nil
}

// parseSelector reads a label selector; null and {} select everything.
func parseSelector(v any) (*labelSelector, error) {
	m := asMap(v)
	s := &labelSelector{match: map[string]string{}}
	for k, val := range asMap(m["matchLabels"]) {
		s.match[k] = fmt.Sprint(val)
	}
	exprs, _ := m["matchExpressions"].([]any)
	for i, raw := range exprs {
		em := asMap(raw)
		e := labelExpr{}
		e.key, _ = em["key"].(string)
		e.op, _ = em["operator"].(string)
		switch e.op {
		case "In", "NotIn", "Exists", "DoesNotExist":
		default:
			return nil, fmt.Errorf("matchExpressions[%d]: operator %q", i, e.op)
		}
		vals, _ := em["values"].([]any)
		for _, x := range vals {
			e.values = append(e.values, fmt.Sprint(x))
		}
		s.exprs = append(s.exprs, e)
	}
	return s, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
