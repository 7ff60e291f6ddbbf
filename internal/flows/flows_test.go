package flows

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

func exampleEnv(t *testing.T) *Env {
	t.Helper()
	doc, probs := config.Parse("example.yaml", config.Example())
	if len(probs) > 0 || doc == nil {
		t.Fatalf("example: %v", probs)
	}
	e, err := NewEnv(doc.Homelab)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAddressesAndPorts(t *testing.T) {
	e := exampleEnv(t)
	h := e.H
	var servers []string
	for _, n := range h.Servers() {
		servers = append(servers, n.IP)
	}
	api, err := e.Addresses("apiserver")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(api)
	for _, want := range append(servers, h.Spec.Network.ControlPlaneVIP) {
		if want != "" && !strings.Contains(got, want) {
			t.Errorf("apiserver %s lacks %s", got, want)
		}
	}
	if !slices.IsSortedFunc(api, func(a, b netip.Addr) int { return a.Compare(b) }) || len(slices.Compact(slices.Clone(api))) != len(api) {
		t.Errorf("apiserver %s not sorted and unique", got)
	}
	nodes, _ := e.Addresses("nodes")
	if len(nodes) != len(h.Spec.Metal.Nodes) {
		t.Errorf("nodes %v", nodes)
	}
	if _, err := e.Addresses("moon"); err == nil {
		t.Error("unknown peer accepted")
	}

	h.Spec.Metal.PXE.Port = 0
	ps, err := e.Ports([]string{"pxe/TCP", "http:8080/TCP", "53/UDP"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Port{{8080, "", "TCP"}, {8080, "http", "TCP"}, {53, "", "UDP"}}
	if !slices.Equal(ps, want) {
		t.Errorf("ports %v, want %v", ps, want)
	}
	for _, bad := range []string{"443", "0/TCP", "70000/TCP", "https/TCP", "443/ICMP"} {
		if _, err := e.Ports([]string{bad}); err == nil {
			t.Errorf("port %q accepted", bad)
		}
	}
}

func TestApplies(t *testing.T) {
	e := exampleEnv(t)
	off := ""
	for _, c := range e.Order {
		if !e.H.Enabled(c) {
			off = c
			break
		}
	}
	if off == "" {
		t.Fatal("the example enables every component")
	}
	on := templates.Flow{From: templates.Endpoint{Component: "argocd"}, To: templates.Endpoint{Peer: "internet"}}
	if !e.Applies(on) {
		t.Error("a flow of a required component does not apply")
	}
	for _, f := range []templates.Flow{
		{From: templates.Endpoint{Component: off}, To: templates.Endpoint{Peer: "internet"}},
		{From: templates.Endpoint{Component: "argocd"}, To: templates.Endpoint{Component: off}},
		{From: templates.Endpoint{Component: "argocd"}, To: templates.Endpoint{Peer: "internet"}, When: []string{off}},
	} {
		if e.Applies(f) {
			t.Errorf("flow %v applies with %s off", f, off)
		}
	}
	if got := e.Namespaces(templates.Endpoint{Layer: "system"}); !slices.Contains(got, "argocd") || slices.Contains(got, e.Namespace[off]) {
		t.Errorf("system layer namespaces %v", got)
	}
}
