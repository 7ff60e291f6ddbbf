package templates

import (
	"strings"
	"testing"
)

func TestFlowsLoad(t *testing.T) {
	f, err := LoadFlows()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Need) < 30 || len(f.Deny) < 10 {
		t.Errorf("%d needed and %d denied flows", len(f.Need), len(f.Deny))
	}
}

// TestFlowsBadInput: a mistake in flows.yaml names the list, the index,
// the flow and what is wrong.
func TestFlowsBadInput(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"need: [{why: x, from: {component: nope}, to: {peer: internet}, ports: [443/TCP]}]", `need[0] (x): from: unknown component "nope"`},
		{"need: [{why: x, from: {component: gitea}, to: {peer: moon}, ports: [443/TCP]}]", `need[0] (x): to: unknown peer "moon"`},
		{"need: [{why: x, from: {component: gitea, peer: lan}, to: {peer: lan}, ports: [443/TCP]}]", "from needs exactly one of"},
		{"need: [{why: x, from: {component: gitea}, to: {peer: lan}}]", "a needed flow names its ports"},
		{"deny: [{why: x, from: {layer: nowhere}, to: {peer: lan}}]", `deny[0] (x): from: unknown layer "nowhere"`},
		{"deny: [{why: x, from: {component: gitea}, to: {peer: lan, pods: {a: b}}}]", "a peer has no pods"},
		{"deny: [{why: x, from: {component: gitea}, to: {peer: lan}, when: [sunny]}]", `unknown condition "sunny"`},
		{"deny: [{from: {component: gitea}, to: {peer: lan}}]", "deny[0]: no why"},
		{"need: [{why: x, form: {}}]", "field form not found"},
	} {
		_, err := parseFlows([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.yaml, err, c.want)
		}
	}
}
