package validate

import (
	"net/netip"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// policiesFrom reads NetworkPolicies and Namespaces from YAML documents
// as Render would return them.
func policiesFrom(t *testing.T, docs string) *NetworkPolicies {
	t.Helper()
	var ms []Manifest
	for i, d := range strings.Split(docs, "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, Manifest{File: "doc" + string(rune('0'+i)), Object: obj})
	}
	n, err := NewNetworkPolicies(ms)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const netpolFixture = `kind: Namespace
metadata: {name: apps, labels: {team: home}}
---
kind: NetworkPolicy
metadata: {name: default-deny, namespace: apps}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
kind: NetworkPolicy
metadata: {name: web, namespace: apps}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: edge}}
          podSelector: {matchLabels: {role: proxy}}
      ports: [{port: http, protocol: TCP}]
    - from:
        - ipBlock: {cidr: 192.168.1.0/24, except: [192.168.1.1/32]}
      ports: [{port: 8443}]
  egress:
    - to:
        - podSelector: {matchLabels: {app: db}}
      ports: [{port: 5432, protocol: TCP}]
    - to:
        - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 192.168.0.0/16]}
      ports: [{port: 9000, endPort: 9010, protocol: TCP}]
---
kind: NetworkPolicy
metadata: {name: db, namespace: apps}
spec:
  podSelector:
    matchExpressions: [{key: app, operator: In, values: [db]}]
  ingress:
    - from:
        - podSelector: {}
---
kind: NetworkPolicy
metadata: {name: team, namespace: apps}
spec:
  podSelector: {matchLabels: {app: metrics}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: home}}
    - from:
        - namespaceSelector: {}
          podSelector: {matchLabels: {scraper: "yes"}}
      ports: [{port: 9100}]
  egress:
    - {}`

// TestNetworkPolicySemantics pins the evaluator to Kubernetes'
// NetworkPolicy semantics, one rule each: default deny; namespace and pod
// selectors in one peer are ANDed; ipBlock with except; named ports match
// the container port's name only; port ranges; policyTypes defaulted from
// the spec (an ingress-only policy leaves egress open); a rule with no
// peers admits every peer.
func TestNetworkPolicySemantics(t *testing.T) {
	n := policiesFrom(t, netpolFixture)
	ip := netip.MustParseAddr
	web := NetPeer{Namespace: "apps", Labels: map[string]string{"app": "web"}, IP: ip("10.42.0.5")}
	db := NetPeer{Namespace: "apps", Labels: map[string]string{"app": "db"}, IP: ip("10.42.0.6")}
	metrics := NetPeer{Namespace: "apps", Labels: map[string]string{"app": "metrics"}, IP: ip("10.42.0.7")}
	other := NetPeer{Namespace: "apps", Labels: map[string]string{"app": "other"}, IP: ip("10.42.0.8")}
	proxy := NetPeer{Namespace: "edge", Labels: map[string]string{"role": "proxy"}, IP: ip("10.42.1.2")}
	edgeOther := NetPeer{Namespace: "edge", Labels: map[string]string{"role": "cache"}, IP: ip("10.42.1.3")}
	scraper := NetPeer{Namespace: "edge", Labels: map[string]string{"scraper": "yes"}, IP: ip("10.42.1.4")}
	lan := NetPeer{IP: ip("192.168.1.20")}
	router := NetPeer{IP: ip("192.168.1.1")}
	internet := NetPeer{IP: ip("1.1.1.1")}
	tcp := func(n int) NetPort { return NetPort{Number: n, Protocol: "TCP"} }
	for _, c := range []struct {
		name     string
		from, to NetPeer
		port     NetPort
		want     bool
	}{
		{"selected namespace and pod, named port", proxy, web, NetPort{Number: 8080, Name: "http", Protocol: "TCP"}, true},
		{"named port: a number alone does not match", proxy, web, tcp(8080), false},
		{"pod selector ANDed with the namespace's", edgeOther, web, NetPort{Number: 8080, Name: "http", Protocol: "TCP"}, false},
		{"protocol must match", proxy, web, NetPort{Number: 8080, Name: "http", Protocol: "UDP"}, false},
		{"ipBlock", lan, web, tcp(8443), true},
		{"ipBlock except", router, web, tcp(8443), false},
		{"ipBlock, other port", lan, web, tcp(8080), false},
		{"egress to a pod, ingress by expression", web, db, tcp(5432), true},
		{"egress allowed, other port denied", web, db, tcp(5433), false},
		{"ingress open to the namespace but egress denied", other, db, tcp(5432), false},
		{"port range", web, internet, tcp(9005), true},
		{"port range end", web, internet, tcp(9011), false},
		{"egress ipBlock except", web, lan, tcp(9005), false},
		{"default deny egress", other, internet, tcp(443), false},
		{"default deny ingress", proxy, other, tcp(80), false},
		{"namespace selector by label", other, metrics, tcp(1234), false}, // other's egress
		{"any namespace, labelled pod, port", scraper, metrics, tcp(9100), true},
		{"any namespace, labelled pod, other port", scraper, metrics, tcp(9101), false},
		{"empty egress rule admits everything", metrics, internet, tcp(25), true},
		{"any port query: some port open", lan, web, NetPort{}, true},
		{"any port query: nothing open", router, web, NetPort{}, false},
		{"unisolated ends", NetPeer{Namespace: "edge", IP: ip("10.42.1.9")}, NetPeer{Namespace: "edge", IP: ip("10.42.1.10")}, tcp(1), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := n.Allowed(c.from, c.to, c.port)
			if v.Allowed != c.want {
				t.Errorf("%s → %s on %s: allowed %v, want %v (%s)", c.from, c.to, c.port, v.Allowed, c.want, v.Reason())
			}
		})
	}

	// Removing the rule that allowed a connection denies it; the policy
	// keeps isolating its pods.
	ref := RuleRef{Namespace: "apps", Policy: "web", Direction: "egress", Index: 0, File: "doc2"}
	if v := n.Allowed(web, db, tcp(5432)); len(v.Egress.By) != 1 || v.Egress.By[0] != ref {
		t.Fatalf("egress allowed by %v, want %v", v.Egress.By, ref)
	}
	if v := n.Without(ref).Allowed(web, db, tcp(5432)); v.Allowed || !v.Ingress.Allowed {
		t.Errorf("without %s: %s", ref, v.Reason())
	}
}

func TestNetworkPolicyBadInput(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{`{podSelector: {}, policyTypes: [Sideways]}`, "spec.policyTypes"},
		{`{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0}}]}]}`, "spec.ingress[0]: from[0].ipBlock: cidr"},
		{`{podSelector: {}, egress: [{to: [{}]}]}`, "spec.egress[0]: to[0]: empty peer"},
		{`{podSelector: {matchExpressions: [{key: a, operator: Near}]}}`, "spec.podSelector"},
	} {
		var spec map[string]any
		if err := yaml.Unmarshal([]byte(c.spec), &spec); err != nil {
			t.Fatal(err)
		}
		_, err := NewNetworkPolicies([]Manifest{{File: "bad.yaml", Object: map[string]any{
			"kind": "NetworkPolicy", "metadata": map[string]any{"name": "p", "namespace": "n"}, "spec": spec,
		}}})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.yaml") {
			t.Errorf("%s: error %v, want one naming bad.yaml and %q", c.spec, err, c.want)
		}
	}
}
