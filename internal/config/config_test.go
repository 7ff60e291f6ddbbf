package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/yamlnode"
)

func fixtures(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "config", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", dir, err)
	}
	return files
}

func TestValidFixtures(t *testing.T) {
	for _, f := range fixtures(t, "valid") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			doc, probs, err := Load(f)
			if err != nil {
				t.Fatalf("valid fixture rejected:\n%v", err)
			}
			for _, p := range probs {
				t.Errorf("unexpected warning: %s", p)
			}
			if doc.Homelab.Spec.Metal.PXE.DHCPMode == "" || doc.Homelab.Spec.Kubernetes.K3sVersion == "" || doc.Homelab.Spec.Forge.DefaultBranch != "main" {
				t.Errorf("defaults not applied: %+v", doc.Homelab.Spec)
			}
		})
	}
	if n := len(fixtures(t, "invalid")); n < 20 {
		t.Errorf("only %d invalid fixtures; the foundation promises at least 20", n)
	}
}

func TestExampleIsValid(t *testing.T) {
	if _, probs := Parse("example.yaml", Example()); len(probs) > 0 {
		t.Fatalf("embedded example has problems:\n%v", probs)
	}
}

func TestInvalidFixturesFail(t *testing.T) {
	for _, f := range fixtures(t, "invalid") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, probs, err := Load(f)
			if err == nil {
				t.Fatal("invalid fixture accepted")
			}
			for _, p := range probs.Errors() {
				if p.Line == 0 || p.File != f {
					t.Errorf("problem without a location: %+v", p)
				}
				if p.Path == "" && !strings.Contains(p.Message, "YAML") && !strings.Contains(p.Message, "empty") {
					t.Errorf("problem without a field path: %+v", p)
				}
			}
		})
	}
}

func TestMACsNormalised(t *testing.T) {
	doc, _, err := Load(filepath.Join("..", "..", "testdata", "config", "valid", "ha.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Homelab.Spec.Metal.Nodes[4].MAC; got != "52:54:00:10:00:12" {
		t.Errorf("MAC 52-54-00-10-00-12 normalised to %q", got)
	}
	doc, _, err = Load(filepath.Join("..", "..", "testdata", "config", "valid", "single-node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Homelab.Spec.Metal.Nodes[0].MAC; got != "1c:69:7a:0a:bc:de" {
		t.Errorf("upper-case MAC normalised to %q", got)
	}
}

func TestEveryProblemInOnePass(t *testing.T) {
	_, probs, _ := Load(filepath.Join("..", "..", "testdata", "config", "invalid", "many-problems.yaml"))
	want := []string{"spec.domain", "spec.network.nodeCIDR", "spec.metal.nodes[0].mac", "spec.forge.owner", "spec.secrets.rotateAfter", "spec.apps.blog.enabled", "spec.mirrors.registries[0].from", "spec.mirrors.registries[0].to"}
	got := map[string]bool{}
	for _, p := range probs {
		got[p.Path] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no problem reported at %s; got %v", w, probs)
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[Duration]string{"90d": "2160h0m0s", "2w": "336h0m0s", "1d12h": "36h0m0s", "30m": "30m0s"} {
		got, err := in.Parse()
		if err != nil || got.String() != want {
			t.Errorf("%s: got %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []Duration{"3 months", "d", "12", "1x", "1d 2h", "-1d"} {
		if _, err := bad.Parse(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMigrate(t *testing.T) {
	src := []byte("# keep me\napiVersion: hl.dev/v1alpha0\nkind: Homelab\nspec:\n  dns: 1.1.1.1 # resolver\n")
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		t.Fatal(err)
	}
	steps := []Migration{{
		From: "hl.dev/v1alpha0", To: "hl.dev/v1alpha1",
		// A trivial step: spec.dns became spec.network.dnsServers.
		Apply: func(top *yaml.Node) error {
			spec := yamlnode.Value(top, "spec")
			for i := 0; i+1 < len(spec.Content); i += 2 {
				if spec.Content[i].Value == "dns" {
					val := spec.Content[i+1]
					spec.Content[i].Value = "network"
					spec.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
						{Kind: yaml.ScalarNode, Value: "dnsServers"},
						{Kind: yaml.SequenceNode, Content: []*yaml.Node{val}},
					}}
				}
			}
			return nil
		},
	}}
	path, err := Migrate(&root, steps)
	if err != nil {
		t.Fatal(err)
	}
	if len(path) != 1 || path[0] != "hl.dev/v1alpha0" {
		t.Errorf("migration path %v", path)
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# keep me", "apiVersion: hl.dev/v1alpha1", "dnsServers:", "- 1.1.1.1 # resolver"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("migrated document lacks %q:\n%s", want, out)
		}
	}
	if _, err := Migrate(&root, steps); err != nil {
		t.Errorf("second migration of a current document: %v", err)
	}
	var old yaml.Node
	_ = yaml.Unmarshal([]byte("apiVersion: hl.dev/v0\n"), &old)
	if _, err := Migrate(&old, steps); err == nil || !strings.Contains(err.Error(), "unsupported apiVersion") {
		t.Errorf("unknown version: %v", err)
	}
}

func TestSchemaIsCommitted(t *testing.T) {
	path := filepath.Join("..", "..", "schemas", "hl.schema.json")
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != string(Schema()) {
		t.Fatalf("%s is stale: run `make schema` (go run ./cmd/hl schema > schemas/hl.schema.json) and commit it", path)
	}
}
