package validate

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/testcharts"
)

// flowFixtures are the homelabs the flow matrix is held on: every valid
// config and the example `hl init --defaults` writes.
var flowFixtures = []struct {
	name string
	opts generator.Options
}{
	{"full", generator.Options{ConfigPath: filepath.Join("..", "testdata", "config", "valid", "full.yaml")}},
	{"ha", generator.Options{ConfigPath: filepath.Join("..", "testdata", "config", "valid", "ha.yaml")}},
	{"minimal", generator.Options{ConfigPath: filepath.Join("..", "testdata", "config", "valid", "minimal.yaml")}},
	{"single-node", generator.Options{ConfigPath: filepath.Join("..", "testdata", "config", "valid", "single-node.yaml")}},
	{"example", generator.Options{ConfigPath: "example.yaml", ConfigData: config.Example()}},
}

type renderedPolicies struct {
	homelab   *config.Homelab
	manifests []Manifest
	pols      *NetworkPolicies
	checks    []FlowCheck
}

var (
	flowRendersMu sync.Mutex
	flowRenders   = map[string]*renderedPolicies{}
)

// renderPolicies renders a fixture with the generator and then every
// kustomization and chart in-process (Render), so the NetworkPolicies a
// chart makes count as much as the templates' own, and expands the flow
// matrix for it. Renders are shared by the tests of this file.
//
// Seam: charts no Go module ships are internal/testcharts stand-ins;
// every NetworkPolicy hl relies on is in hl's own templates (wrapper
// charts' templates/ or kustomize folders), which render for real.
func renderPolicies(t *testing.T, name string, opts generator.Options) *renderedPolicies {
	t.Helper()
	flowRendersMu.Lock()
	defer flowRendersMu.Unlock()
	if r, ok := flowRenders[name]; ok {
		return r
	}
	ctx := context.Background()
	dir, doc := renderWithTestKey(t, opts)
	cache := t.TempDir()
	testcharts.Catalog(t).Cache(t, cache, doc.Homelab.Spec.Mirrors.Charts...)
	_, ms, err := Render(ctx, Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	pols, err := NewNetworkPolicies(ms)
	if err != nil {
		t.Fatal(err)
	}
	checks, err := FlowChecks(doc.Homelab, pols)
	if err != nil {
		t.Fatal(err)
	}
	r := &renderedPolicies{homelab: doc.Homelab, manifests: ms, pols: pols, checks: checks}
	flowRenders[name] = r
	return r
}

// TestFlowMatrix holds the rendered NetworkPolicies of every fixture to
// templates/flows.yaml: each needed flow allowed (the source's egress and
// the destination's ingress), each denied one denied. A failure names the
// flow, the two ends, the port and which side is wrong.
func TestFlowMatrix(t *testing.T) {
	for _, fx := range flowFixtures {
		t.Run(fx.name, func(t *testing.T) {
			r := renderPolicies(t, fx.name, fx.opts)
			need, deny := 0, 0
			for _, c := range r.checks {
				if c.Need {
					need++
				} else {
					deny++
				}
			}
			// A matrix that expands to little checks nothing: every
			// fixture has the required components and the bot.
			if need < 20 || deny < 10 || len(r.pols.Rules()) < 50 {
				t.Fatalf("%d needed and %d denied checks over %d rules: the matrix or the render lost its flows", need, deny, len(r.pols.Rules()))
			}
			for _, f := range CheckFlows(r.pols, r.checks) {
				t.Errorf("%s", f)
			}
			t.Logf("%d needed and %d denied connections checked against %d policy rules", need, deny, len(r.pols.Rules()))
		})
	}
}

// TestFlowMatrixMetalPipeline pins the issue-17 fix on every fixture (each
// has nodes and Woodpecker): the rollout pipeline reaches hl metal serve, every node's
// SSH and the API server, and no other port of the nodes.
func TestFlowMatrixMetalPipeline(t *testing.T) {
	for _, fx := range flowFixtures {
		t.Run(fx.name, func(t *testing.T) { metalPipelineChecked(t, renderPolicies(t, fx.name, fx.opts)) })
	}
}

func metalPipelineChecked(t *testing.T, r *renderedPolicies) {
	want := map[string]bool{
		"the metal rollout pipeline calls hl metal serve (reinstall marks)":                false,
		"the metal rollout pipeline reboots nodes over SSH":                                false,
		"the metal rollout pipeline cordons and drains through the API server":             false,
		"pipelines reach the nodes on SSH (and the servers on 6443) only, not the kubelet": false,
	}
	for _, c := range r.checks {
		if _, ok := want[c.Flow.Why]; ok {
			want[c.Flow.Why] = true
		}
	}
	for why, seen := range want {
		if !seen {
			t.Errorf("flow %q expands to no check", why)
		}
	}
}

// TestFlowMatrixCatchesRemovedRule is the mutation test: every rule that
// alone allows a needed connection is removed from the rendered
// NetworkPolicy object, one at a time; the policies are read again from
// the mutated manifests, and the matrix must then report that connection,
// naming its flow. Rules no needed flow uses are logged: they allow more
// than the matrix declares.
func TestFlowMatrixCatchesRemovedRule(t *testing.T) {
	for _, fx := range flowFixtures {
		t.Run(fx.name, func(t *testing.T) { removeEachNeededRule(t, renderPolicies(t, fx.name, fx.opts)) })
	}
}

func removeEachNeededRule(t *testing.T, r *renderedPolicies) {
	needed := map[RuleRef][]FlowCheck{}
	used := map[RuleRef]bool{}
	for _, c := range r.checks {
		if !c.Need {
			continue
		}
		v := r.pols.Allowed(c.From, c.To, c.Port)
		for _, side := range []NetSide{v.Egress, v.Ingress} {
			for _, ref := range side.By {
				used[ref] = true
			}
			if len(side.By) == 1 {
				needed[side.By[0]] = append(needed[side.By[0]], c)
			}
		}
	}
	if len(needed) < 20 {
		t.Fatalf("only %d rules are needed alone by some flow", len(needed))
	}
	refs := make([]RuleRef, 0, len(needed))
	for ref := range needed {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b RuleRef) int { return strings.Compare(a.String(), b.String()) })
	for _, ref := range refs {
		ms, err := withoutRule(r.manifests, ref)
		if err != nil {
			t.Fatal(err)
		}
		mutated, err := NewNetworkPolicies(ms)
		if err != nil {
			t.Fatalf("%s removed: %v", ref, err)
		}
		failed := map[string]bool{}
		for _, f := range CheckFlows(mutated, r.checks) {
			failed[f.Check.Flow.Why] = true
		}
		for _, c := range needed[ref] {
			if !failed[c.Flow.Why] {
				t.Errorf("%s removed: the matrix still allows %s", ref, c)
			}
		}
	}
	var unused []string
	for _, ref := range r.pols.Rules() {
		if !used[ref] {
			unused = append(unused, ref.String())
		}
	}
	t.Logf("%d rules removed one at a time, each caught; %d rules serve no declared flow:\n%s", len(refs), len(unused), strings.Join(unused, "\n"))
}

// withoutRule returns the manifests with one rule deleted from the
// rendered NetworkPolicy object; the others are shared, not copied.
func withoutRule(ms []Manifest, ref RuleRef) ([]Manifest, error) {
	out := slices.Clone(ms)
	for i, m := range out {
		md := asMap(m.Object["metadata"])
		if m.Object["kind"] != "NetworkPolicy" || m.File != ref.File || md["name"] != ref.Policy || md["namespace"] != ref.Namespace {
			continue
		}
		spec := asMap(m.Object["spec"])
		rules, _ := spec[ref.Direction].([]any)
		if ref.Index >= len(rules) {
			return nil, fmt.Errorf("%s: no such rule", ref)
		}
		newSpec := map[string]any{}
		for k, v := range spec {
			newSpec[k] = v
		}
		newSpec[ref.Direction] = slices.Delete(slices.Clone(rules), ref.Index, ref.Index+1)
		obj := map[string]any{}
		for k, v := range m.Object {
			obj[k] = v
		}
		obj["spec"] = newSpec
		out[i].Object = obj
		return out, nil
	}
	return nil, fmt.Errorf("%s: no such NetworkPolicy", ref)
}
