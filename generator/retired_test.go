package generator

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// oldIngressNginx is what an hl with the ingress-nginx component rendered
// into system/ingress-nginx/ (the full fixture's files, abridged: the
// paths and kinds are what matter here).
var oldIngressNginx = map[string]string{
	"system/ingress-nginx/Chart.yaml":                      "apiVersion: v2\nname: ingress-nginx\ndescription: HTTP(S) ingress controller on a load-balancer address\nversion: 1.0.0\ndependencies:\n  - name: ingress-nginx\n    version: 4.14.0\n    repository: \"https://kubernetes.github.io/ingress-nginx\"\n",
	"system/ingress-nginx/values.yaml":                     "ingress-nginx:\n  controller:\n    replicaCount: 2\n    ingressClassResource:\n      name: nginx\n      default: true\n",
	"system/ingress-nginx/app.yaml":                        "name: ingress-nginx\nnamespace: ingress-nginx\nlayer: system\nsyncWave: \"0\"\n",
	"system/ingress-nginx/templates/namespace.yaml":        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ingress-nginx\n",
	"system/ingress-nginx/templates/networkpolicy.yaml":    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
	"system/legacy-edited/templates/networkpolicy.yaml":    "# not a retired component: an edit keeps it\n",
	"system/legacy-untouched/templates/networkpolicy.yaml": "# not a retired component, unedited: deleted as always\n",
}

// asRenderedBefore writes files into the repo at dir and records them in
// its render state, as if the last hl render had written them.
func asRenderedBefore(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	st, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		st.Files = append(st.Files, stateEntry{Path: p, SHA256: sum([]byte(c))})
		st.base[p] = []byte(c)
	}
	sort.Slice(st.Files, func(i, j int) bool { return st.Files[i].Path < st.Files[j].Path })
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(st); err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string][]byte{stateFile: b.Bytes(), baseFile: encodeBase(st.base)} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(p)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReRenderRemovesRetiredIngressNginx: a repository rendered when the
// catalog had ingress-nginx loses system/ingress-nginx/ on the next
// render, every file of it — the Chart.yaml a bot bumped since included,
// which for a component that still existed would be kept as an edit —
// so its app.yaml is gone (the root ApplicationSet drops the Application)
// and no half folder stays behind. Edited leftovers of a component that
// is not retired are kept, as before.
func TestReRenderRemovesRetiredIngressNginx(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("full"), dir, nil)
	asRenderedBefore(t, dir, oldIngressNginx)
	// The bot bumped the chart after that render; the user edited a file
	// of a folder no template renders any more.
	for p, edit := range map[string][2]string{
		"system/ingress-nginx/Chart.yaml":                   {"version: 4.14.0", "version: 4.14.1"},
		"system/legacy-edited/templates/networkpolicy.yaml": {"keeps it", "keeps it (edited)"},
	} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		b, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, bytes.Replace(b, []byte(edit[0]), []byte(edit[1]), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	res := mustRender(t, fixture("full"), dir, nil)
	if c := res.Conflicts(); len(c) != 0 {
		t.Fatalf("conflicts: %+v", c)
	}
	actions := map[string]FileResult{}
	for _, f := range res.Files {
		actions[f.Path] = f
	}
	after := snapshot(t, dir)
	for p := range after {
		if strings.HasPrefix(p, "system/ingress-nginx/") {
			t.Errorf("%s survived the re-render (%s %s)", p, actions[p].Action, actions[p].Note)
		}
	}
	if f := actions["system/ingress-nginx/Chart.yaml"]; f.Action != ActionDelete || !strings.Contains(f.Note, "replaced by traefik") {
		t.Errorf("bumped Chart.yaml: %s %q, want a delete saying why", f.Action, f.Note)
	}
	if _, ok := after["system/legacy-edited/templates/networkpolicy.yaml"]; !ok {
		t.Error("an edited file of a component that is not retired was deleted")
	}
	if _, ok := after["system/legacy-untouched/templates/networkpolicy.yaml"]; ok {
		t.Error("an unedited file no template renders was kept")
	}
	for _, p := range []string{"system/traefik/app.yaml", "system/traefik/Chart.yaml", "system/traefik/README.md"} {
		if _, ok := after[p]; !ok {
			t.Errorf("%s missing after the re-render", p)
		}
	}
	// The state no longer lists the deleted files, so the render after is
	// a no-op.
	var st state
	if err := yaml.Unmarshal(after[stateFile], &st); err != nil {
		t.Fatal(err)
	}
	for _, e := range st.Files {
		if strings.HasPrefix(e.Path, "system/ingress-nginx/") {
			t.Errorf("state still lists %s", e.Path)
		}
	}
	again := mustRender(t, fixture("full"), dir, nil)
	for _, f := range again.Files {
		if f.Action != ActionUnchanged && f.Action != ActionKeep {
			t.Errorf("second render: %s %s", f.Action, f.Path)
		}
	}
}
