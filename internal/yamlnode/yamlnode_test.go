package yamlnode

import (
	"testing"

	"gopkg.in/yaml.v3"
)

func parse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func TestLookups(t *testing.T) {
	root := parse(t, "a:\n  b:\n    c: 1\nlist: [x]\nscalar: s\n")
	if v := Path(root, "a", "b", "c"); v == nil || v.Value != "1" {
		t.Fatalf("Path a.b.c = %v", v)
	}
	for _, p := range [][]string{{"a", "x"}, {"scalar", "y"}, {"list", "0"}, {"missing"}} {
		if v := Path(root, p...); v != nil {
			t.Errorf("Path %v = %v, want nil", p, v)
		}
	}
	if k := Key(root, "scalar"); k == nil || k.Line != 5 || k.Value != "scalar" {
		t.Errorf("Key scalar = %+v", k)
	}
	if k, v := Pair(nil, "a"); k != nil || v != nil {
		t.Error("Pair on nil")
	}
	if !Delete(root, "a") || Delete(root, "a") || Value(root, "a") != nil || Value(root, "list") == nil {
		t.Errorf("Delete: %d nodes left", len(root.Content))
	}
	if Delete(Value(root, "scalar"), "x") {
		t.Error("Delete on a scalar")
	}
}
