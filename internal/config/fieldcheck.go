package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// At returns the problems at path or inside it (path.x, path[i]), so a
// form can show a field exactly the messages `hl config validate` prints
// for it.
func (ps Problems) At(paths ...string) Problems {
	var out Problems
	for _, p := range ps {
		if underAny(p.Path, paths) {
			out = append(out, p)
		}
	}
	return out
}

// NetworkSuggestion is a layout of the well-known addresses inside a node
// CIDR, for forms that prefill them.
type NetworkSuggestion struct {
	Gateway           string
	PXEAddress        string
	ControlPlaneVIP   string
	LoadBalancerRange string
	// FirstNode is where node addresses start.
	FirstNode netip.Addr
	prefix    netip.Prefix
	lbFirst   netip.Addr
	lbLast    netip.Addr
}

// SuggestNetwork lays out cidr the way the example does for a /24: the
// gateway on .1, the PXE host on .5, the control-plane VIP on .10, nodes
// from .11 and LoadBalancer services on .220-.239. Networks smaller than
// a /24 are packed tighter; a network with fewer than six hosts is refused.
// The error texts match Validate's for spec.network.nodeCIDR.
func SuggestNetwork(cidr string) (NetworkSuggestion, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	switch {
	case err != nil:
		return NetworkSuggestion{}, fmt.Errorf("%q is not a CIDR (e.g. 192.168.1.0/24)", cidr)
	case p.Masked() != p:
		return NetworkSuggestion{}, fmt.Errorf("%q is not canonical: did you mean %s?", cidr, p.Masked())
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits < 3 {
		return NetworkSuggestion{}, fmt.Errorf("%s is too small for a homelab: it needs room for a gateway, a VIP, nodes and LoadBalancer addresses", p)
	}
	gw, pxe, vip, node, lbFirst, lbLast := 1, 5, 10, 11, 220, 239
	if hostBits < 8 {
		hosts := 1<<hostBits - 2
		lbSize := max(1, hosts/4)
		gw, pxe, vip, node = 1, 2, 3, 4
		lbLast = hosts
		lbFirst = lbLast - lbSize + 1
	}
	base := p.Addr()
	s := NetworkSuggestion{
		Gateway:         addrPlus(base, gw).String(),
		PXEAddress:      addrPlus(base, pxe).String(),
		ControlPlaneVIP: addrPlus(base, vip).String(),
		FirstNode:       addrPlus(base, node),
		prefix:          p,
		lbFirst:         addrPlus(base, lbFirst),
		lbLast:          addrPlus(base, lbLast),
	}
	s.LoadBalancerRange = s.lbFirst.String() + "-" + s.lbLast.String()
	return s, nil
}

// NodeIP returns the first node address (from FirstNode on) that is not in
// used and not in the suggested LoadBalancer range, or "" when the
// network is full.
func (s NetworkSuggestion) NodeIP(used []string) string {
	taken := map[netip.Addr]bool{}
	for _, u := range used {
		if a, err := netip.ParseAddr(strings.TrimSpace(u)); err == nil {
			taken[a] = true
		}
	}
	for a := s.FirstNode; a.IsValid() && s.prefix.Contains(a); a = a.Next() {
		if a == lastAddr(s.prefix) && a.Is4() {
			break
		}
		if s.lbFirst.Compare(a) <= 0 && a.Compare(s.lbLast) <= 0 {
			continue
		}
		if !taken[a] {
			return a.String()
		}
	}
	return ""
}

// InCIDR reports whether addr (an address or a FIRST-LAST range) lies
// inside cidr; false when either does not parse.
func InCIDR(cidr, addr string) bool {
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return false
	}
	if first, last, err := parseRange(addr); err == nil {
		return p.Contains(first) && p.Contains(last)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(addr))
	return err == nil && p.Contains(a)
}

func addrPlus(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}
