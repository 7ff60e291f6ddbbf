// Package flows makes templates/flows.yaml concrete for one homelab:
// which declared flows apply (their components on, their conditions
// true), the addresses of the peers outside the pod network and the ports
// of symbolic names. The generator writes NetworkPolicy rules from it and
// validate checks the rendered policies against it, so both read the
// matrix the same way.
package flows

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

// Internet stands for every public address: one no policy's home-network
// or cluster exception covers.
var Internet = netip.MustParseAddr("1.1.1.1")

// Port is one concrete port of a flow. Name is the container port's name
// when the flow gives one (a policy may name the port instead of
// numbering it).
type Port struct {
	Number   int
	Name     string
	Protocol string
}

// Env is a homelab as the flow matrix sees it.
type Env struct {
	H *config.Homelab
	// Namespace and Layer map each catalog component to its own.
	Namespace, Layer map[string]string
	// Order lists the components in catalog order.
	Order []string
}

// NewEnv reads the catalog for a homelab.
func NewEnv(h *config.Homelab) (*Env, error) {
	cat, err := templates.LoadCatalog()
	if err != nil {
		return nil, err
	}
	e := &Env{H: h, Namespace: map[string]string{}, Layer: map[string]string{}}
	for _, c := range cat.Components {
		e.Namespace[c.Name], e.Layer[c.Name] = c.Namespace, c.Layer
		e.Order = append(e.Order, c.Name)
	}
	return e, nil
}

// Applies reports whether a flow exists in this homelab: its when
// conditions hold and the components its ends name are on.
func (e *Env) Applies(f templates.Flow) bool {
	for _, w := range f.When {
		switch w {
		case "forge-in-cluster":
			if in, _ := e.H.InClusterForge(); !in {
				return false
			}
		case "dns-rfc2136":
			if e.H.Spec.DNS.RFC2136 == nil {
				return false
			}
		default:
			if !e.H.Enabled(w) {
				return false
			}
		}
	}
	for _, end := range []templates.Endpoint{f.From, f.To} {
		if end.Component != "" && end.Component != "*" && !e.H.Enabled(end.Component) {
			return false
		}
	}
	return true
}

// Namespaces are the namespaces a pod endpoint stands for (none for a
// peer or a component that is off).
func (e *Env) Namespaces(end templates.Endpoint) []string {
	switch {
	case end.Peer != "":
		return nil
	case end.Namespace != "":
		return []string{end.Namespace}
	case end.Component == "*" || end.Layer != "":
		var out []string
		for _, c := range e.Order {
			if e.H.Enabled(c) && (end.Layer == "" || e.Layer[c] == end.Layer) {
				out = append(out, e.Namespace[c])
			}
		}
		return out
	case e.H.Enabled(end.Component):
		return []string{e.Namespace[end.Component]}
	}
	return nil
}

// Addresses are the addresses of a peer: internet (Internet), lan
// (spec.network.gateway, the router), pxe (spec.metal.pxe.address), dns
// (spec.dns.rfc2136.server), nodes (every node) or apiserver (the control-plane VIP and every server
// node), sorted, each once.
func (e *Env) Addresses(peer string) ([]netip.Addr, error) {
	n := e.H.Spec.Network
	var list []string
	switch peer {
	case "internet":
		return []netip.Addr{Internet}, nil
	case "lan":
		list = []string{n.Gateway}
	case "pxe":
		list = []string{e.H.Spec.Metal.PXE.Address}
	case "dns":
		if r := e.H.Spec.DNS.RFC2136; r != nil {
			list = []string{r.Server}
		}
	case "nodes":
		for _, node := range e.H.Spec.Metal.Nodes {
			list = append(list, node.IP)
		}
	case "apiserver":
		if n.ControlPlaneVIP != "" {
			list = append(list, n.ControlPlaneVIP)
		}
		for _, node := range e.H.Servers() {
			list = append(list, node.IP)
		}
	default:
		return nil, fmt.Errorf("unknown peer %q", peer)
	}
	out := make([]netip.Addr, 0, len(list))
	for _, s := range list {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", peer, err)
		}
		out = append(out, ip)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out), nil
}

// Ports makes a flow's ports concrete: pxe is spec.metal.pxe.port
// (default 8080), alerting every port of spec.alerting's receivers, dns
// spec.dns.rfc2136.port.
func (e *Env) Ports(specs []string) ([]Port, error) {
	var out []Port
	for _, s := range specs {
		num, proto, ok := strings.Cut(s, "/")
		if !ok || (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
			return nil, fmt.Errorf("port %q: want <port>/<TCP|UDP|SCTP>", s)
		}
		name := ""
		if n, p, named := strings.Cut(num, ":"); named {
			name, num = n, p
		}
		switch num {
		case "pxe":
			p := e.H.Spec.Metal.PXE.Port
			if p == 0 {
				p = 8080
			}
			out = append(out, Port{Number: p, Protocol: proto})
			continue
		case "dns":
			if r := e.H.Spec.DNS.RFC2136; r != nil {
				out = append(out, Port{Number: r.Port, Protocol: proto})
			}
			continue
		case "alerting":
			for _, p := range e.H.Spec.Alerting.Ports() {
				out = append(out, Port{Number: p, Protocol: proto})
			}
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q: not a port number", s)
		}
		out = append(out, Port{Number: n, Name: name, Protocol: proto})
	}
	return out, nil
}
