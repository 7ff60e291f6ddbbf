package generator

import (
	"bytes"
	"errors"
	"io"
	"path"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/yamlnode"
	"hl.dev/hl/schemas"
)

// knownDefaults are credentials shipped as defaults by upstream charts
// and tutorials; none may appear where a credential goes.
var knownDefaults = map[string]bool{
	"admin": true, "password": true, "changeme": true, "change-me": true, "prom-operator": true,
	"secret": true, "root": true, "toor": true, "default": true, "123456": true, "12345678": true,
	"letmein": true, "gitea": true, "postgres": true, "minio123": true, "minioadmin": true,
	"supersecret": true, "admin123": true, "pass": true, "test": true,
}

var credentialKey = regexp.MustCompile(`(?i)(password|passwd|secret|token|apikey|api_key|credentials?)$`)

type yamlDoc struct {
	file string
	node *yaml.Node
}

// renderedDocs parses every YAML file of a rendered tree (outside .hl/).
func renderedDocs(t *testing.T, tree map[string][]byte) []yamlDoc {
	t.Helper()
	var out []yamlDoc
	for _, p := range sortedKeys(tree) {
		if strings.HasPrefix(p, ".hl/") || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(tree[p]))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: invalid YAML: %v", p, err)
				break
			}
			if len(n.Content) > 0 {
				out = append(out, yamlDoc{p, n.Content[0]})
			}
		}
	}
	return out
}

// walk calls fn for every key/value pair below n.
func walk(n *yaml.Node, fn func(key string, val *yaml.Node)) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			fn(n.Content[i].Value, n.Content[i+1])
			walk(n.Content[i+1], fn)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			walk(c, fn)
		}
	}
}

var unpinnedTag = regexp.MustCompile(`^(latest|stable|main|master|edge)?$`)

// TestRenderedTreeFollowsTheRules walks the full render and fails on the
// things a homelab must never ship (issue 4's rules for every template).
func TestRenderedTreeFollowsTheRules(t *testing.T) {
	for _, fx := range []string{"full", "minimal", "ha", "single-node"} {
		t.Run(fx, func(t *testing.T) {
			dir := t.TempDir()
			mustRender(t, fixture(fx), dir, nil)
			tree := snapshot(t, dir)
			docs := renderedDocs(t, tree)
			appNS := map[string]string{} // component folder → namespace
			for _, d := range docs {
				if path.Base(d.file) == "app.yaml" && yamlnode.Path(d.node, "namespace") != nil {
					appNS[path.Dir(d.file)] = yamlnode.Path(d.node, "namespace").Value
				}
			}
			denied := map[string]bool{}
			namespaces := map[string]string{}
			for _, d := range docs {
				kind := yamlnode.Path(d.node, "kind")
				folder := strings.Join(strings.SplitN(d.file, "/", 3)[:min(2, strings.Count(d.file, "/"))], "/")
				ns := appNS[folder]
				if n := yamlnode.Path(d.node, "metadata", "namespace"); n != nil {
					ns = n.Value
				}
				if kind != nil && kind.Value == "Secret" {
					if !isSecretPath(d.file) {
						t.Errorf("%s: a Secret outside a SOPS file", d.file)
					}
					for _, sec := range []string{"data", "stringData"} {
						walk(yamlnode.Path(d.node, sec), func(k string, v *yaml.Node) {
							if v.Kind == yaml.ScalarNode && !strings.HasPrefix(v.Value, "ENC[") {
								t.Errorf("%s: %s.%s is not encrypted", d.file, sec, k)
							}
						})
					}
				}
				if kind != nil && kind.Value == "Namespace" {
					namespaces[yamlnode.Path(d.node, "metadata", "name").Value] = d.file
					if yamlnode.Path(d.node, "metadata", "labels", "pod-security.kubernetes.io/enforce") == nil {
						t.Errorf("%s: namespace without a Pod Security enforce label", d.file)
					}
				}
				if kind != nil && kind.Value == "NetworkPolicy" {
					sel := yamlnode.Path(d.node, "spec", "podSelector")
					types := yamlnode.Path(d.node, "spec", "policyTypes")
					if sel != nil && len(sel.Content) == 0 && types != nil && len(types.Content) == 2 &&
						yamlnode.Path(d.node, "spec", "ingress") == nil && yamlnode.Path(d.node, "spec", "egress") == nil {
						denied[ns] = true
					}
				}
				// A system-upgrade Plan's upgrade image takes spec.version as
				// its tag: that is the pin.
				planPinned := kind != nil && kind.Value == "Plan" && yamlnode.Path(d.node, "spec", "version") != nil
				walk(d.node, func(k string, v *yaml.Node) {
					if v.Kind != yaml.ScalarNode {
						return
					}
					if credentialKey.MatchString(k) && knownDefaults[strings.ToLower(v.Value)] {
						t.Errorf("%s: %s is a well-known default credential %q", d.file, k, v.Value)
					}
					if k == "image" && v.Tag == "!!str" && strings.Contains(v.Value, "/") && !planPinned {
						ref := v.Value
						if i := strings.LastIndex(ref, "@"); i >= 0 {
							return // digest pinned
						}
						colon := strings.LastIndex(ref, ":")
						if colon < strings.LastIndex(ref, "/") || unpinnedTag.MatchString(ref[colon+1:]) {
							t.Errorf("%s: image %q has no pinned tag", d.file, ref)
						}
					}
				})
				if deps := yamlnode.Path(d.node, "dependencies"); path.Base(d.file) == "Chart.yaml" && deps != nil {
					for _, dep := range deps.Content {
						v := yamlnode.Path(dep, "version")
						if v == nil || strings.ContainsAny(v.Value, "^~*x><=| ") || v.Value == "" {
							t.Errorf("%s: dependency %s is not pinned to one version", d.file, yamlnode.Path(dep, "name").Value)
						}
					}
				}
				if strings.HasPrefix(d.file, ".woodpecker/") {
					if err := schemas.ValidateYAML(schemas.Woodpecker, tree[d.file]); err != nil {
						t.Errorf("%s: invalid Woodpecker pipeline: %v", d.file, err)
					}
				}
			}
			if len(namespaces) < 3 {
				t.Fatalf("only %d namespaces rendered", len(namespaces))
			}
			for ns, file := range namespaces {
				if !denied[ns] {
					t.Errorf("namespace %s (%s) has no default-deny NetworkPolicy", ns, file)
				}
			}
		})
	}
}

// TestPolicyWalkCatchesViolations proves the walker is not vacuous: a tree
// with each violation planted must fail it.
func TestPolicyWalkCatchesViolations(t *testing.T) {
	bad := map[string][]byte{
		"apps/x/secret.yaml": []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n"),
		"apps/x/values.yaml": []byte("x:\n  adminPassword: prom-operator\n  image: ghcr.io/x/y:latest\n"),
	}
	docs := renderedDocs(t, bad)
	found := 0
	for _, d := range docs {
		if k := yamlnode.Path(d.node, "kind"); k != nil && k.Value == "Secret" && !isSecretPath(d.file) {
			found++
		}
		walk(d.node, func(k string, v *yaml.Node) {
			if credentialKey.MatchString(k) && knownDefaults[strings.ToLower(v.Value)] {
				found++
			}
			if k == "image" && unpinnedTag.MatchString(v.Value[strings.LastIndex(v.Value, ":")+1:]) {
				found++
			}
		})
	}
	if found != 3 {
		t.Fatalf("walker found %d of 3 planted violations", found)
	}
}
