package generator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"text/template"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/yamlnode"
	"hl.dev/hl/schemas"
	"hl.dev/hl/templates"
)

// hostileStrings are values that break out of a file format when a
// template writes them without quoting: a line break that starts a new
// YAML key, quotes that close a scalar or a shell word, a comment sign
// that cuts a value short, JMESPath's '||', shell expansions, template
// and YAML syntax, backslashes and the Unicode line separators.
var hostileStrings = []string{
	"x\ninjected: true",
	"x\n  injected: true\n",
	"x\r\ninjected: true",
	`x" injected: "y`,
	`x' injected: 'y`,
	"x # cut here",
	"a'||'x@example.com",
	"${HOME}",
	"$(touch /tmp/hl-injected)",
	"`touch /tmp/hl-injected`",
	`x\" \\ \n \'`,
	"x\\",
	"x\u2028injected: true",
	"x\u2029y\u0085z",
	"{{ .Spec }}",
	"x; reboot",
	"- injected",
	"x: y",
	"*alias",
	"!!binary eA==",
	"100%s%d%%",
	"x,role:admin",
}

// TestHostileStrings puts every string of hl.yaml, one at a time, under
// attack. The fields come from the committed JSON schema
// (schemas/hl.schema.json), not from a list: every string property, list
// item, map value and map key, and every string leaf of the free-form
// spec.apps.<name>.values. Each field is set to each hostile string in a
// valid configuration (testdata/config/valid/full.yaml with
// testdata/config/injection/overlay.yaml), and then either
//
//   - config.Parse rejects it with errors at exactly that field's path, and
//     the JSON schema rejects it too, or
//   - the schema accepts it too, the plan renders, every rendered YAML file
//     still parses, scripts pass bash -n, and each file has the same shape
//     as the render of a benign value: the same documents, keys and list
//     lengths, and scalars that differ only where the hostile value stands
//     in for the benign one, written raw into a parsed YAML scalar or
//     through one of the template quoting functions.
//
// A field the base configuration has no instance of, or a values key a
// template reads that the overlay does not set, fails the test: a new
// field is never silently left out.
func TestHostileStrings(t *testing.T) {
	base := injectionBase(t)
	fields := schemaStringFields(t)
	cases := instantiate(t, base, fields)
	cases = append(cases, valuesCases(t, base)...)
	checkValuesReadsCovered(t, base)

	t.Run("fields", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.path, func(t *testing.T) {
				t.Parallel()
				hostileCaseRun(t, base, c)
			})
		}
	})
	t.Logf("%d string fields, %d hostile values each", len(cases), len(hostileStrings))
}

func hostileCaseRun(t *testing.T, base *yaml.Node, c hostileCase) {
	var want *Plan
	for _, h := range hostileStrings {
		data := c.with(t, base, h)
		_, probs := config.Parse("hl.yaml", data)
		schemaErr := schemas.ValidateYAML(schemas.HL, data)
		if errs := probs.Errors(); len(errs) > 0 {
			for _, p := range errs {
				if p.Path != c.problemPath(h) {
					t.Errorf("%q: problem at %s, want only %s: %s", h, p.Path, c.problemPath(h), p)
				}
			}
			if schemaErr == nil {
				t.Errorf("%q: Validate rejects it but the JSON schema accepts it", h)
			}
			continue
		}
		if schemaErr != nil {
			t.Errorf("%q: Validate accepts it but the JSON schema rejects it: %v", h, schemaErr)
		}
		if want == nil {
			want = planOf(t, c.with(t, base, c.benign), c.scope)
		}
		comparePlans(t, h, c.benign, want, planOf(t, data, c.scope))
	}
}

// injectionBase is full.yaml with the overlay merged in.
func injectionBase(t *testing.T) *yaml.Node {
	t.Helper()
	var doc, over yaml.Node
	for _, f := range []struct {
		path string
		n    *yaml.Node
	}{{fixture("full"), &doc}, {repoRoot + "testdata/config/injection/overlay.yaml", &over}} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, f.n); err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
	}
	mergeNode(doc.Content[0], over.Content[0])
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, probs := config.Parse("base.yaml", out); len(probs.Errors()) > 0 {
		t.Fatalf("the injection base is not valid:\n%v", probs)
	}
	return &doc
}

// A fieldPath is a schema location: property names, "[]" for list items,
// "{}" for map values and "{key}" for map keys.
type fieldPath []string

// schemaStringFields walks the committed hl.yaml schema and returns every
// location that holds a string, plus the free-form objects.
func schemaStringFields(t *testing.T) []fieldPath {
	t.Helper()
	raw, err := schemas.FS.ReadFile(schemas.HL)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	defs, _ := root["$defs"].(map[string]any)
	var out []fieldPath
	var walk func(s map[string]any, at fieldPath, depth int)
	walk = func(s map[string]any, at fieldPath, depth int) {
		if depth > 20 {
			t.Fatalf("schema too deep at %v", at)
		}
		if ref, ok := s["$ref"].(string); ok {
			def, ok := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
			if !ok {
				t.Fatalf("%v: unresolved %s", at, ref)
			}
			walk(def, at, depth+1)
			return
		}
		switch s["type"] {
		case "string":
			out = append(out, at)
		case "array":
			items, _ := s["items"].(map[string]any)
			walk(items, append(at[:len(at):len(at)], "[]"), depth+1)
		case "object":
			props, _ := s["properties"].(map[string]any)
			for _, name := range sortedKeys(props) {
				walk(props[name].(map[string]any), append(at[:len(at):len(at)], name), depth+1)
			}
			switch ap := s["additionalProperties"].(type) {
			case map[string]any:
				out = append(out, append(at[:len(at):len(at)], "{key}"))
				walk(ap, append(at[:len(at):len(at)], "{}"), depth+1)
			case nil:
				if props == nil { // free-form: spec.apps.<name>.values
					out = append(out, append(at[:len(at):len(at)], "*"))
				}
			}
		}
	}
	walk(root, nil, 0)
	if len(out) < 50 {
		t.Fatalf("only %d string fields found in the schema: is the walk broken?", len(out))
	}
	return out
}

// A hostileCase sets one field of the base document.
type hostileCase struct {
	path string
	// benign is the value a reference render uses in place of the
	// hostile one.
	benign string
	// set puts value at the field in a copy of the base.
	set func(doc *yaml.Node, value string)
	// key is set for map-key cases: the problem path names the new key.
	keyOf string
	// scope, when set, lists the template folders the field can reach
	// (those of the components with values): only they are rendered, to
	// keep the test fast.
	scope []string
}

func (c hostileCase) with(t *testing.T, base *yaml.Node, value string) []byte {
	t.Helper()
	doc := cloneNode(base)
	c.set(doc, value)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (c hostileCase) problemPath(value string) string {
	if c.keyOf != "" {
		return joinKey(c.keyOf, value)
	}
	return c.path
}

// instantiate turns schema locations into cases on the base document:
// the first item of a list, every key of a map. A location the base has
// no parent for fails the test.
func instantiate(t *testing.T, base *yaml.Node, fields []fieldPath) []hostileCase {
	t.Helper()
	var out []hostileCase
	for _, f := range fields {
		if len(f) > 0 && f[len(f)-1] == "*" {
			continue // free-form: valuesCases
		}
		var expand func(n *yaml.Node, rest fieldPath, at string, chain []int)
		expand = func(n *yaml.Node, rest fieldPath, at string, chain []int) {
			if n == nil {
				t.Errorf("schema field %s: the injection base has no %s; add one to testdata/config/injection/overlay.yaml", strings.Join(f, "."), at)
				return
			}
			seg := rest[0]
			last := len(rest) == 1
			switch {
			case seg == "[]":
				if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
					t.Errorf("schema field %s: %s is empty in the injection base; add an item to testdata/config/injection/overlay.yaml", strings.Join(f, "."), at)
					return
				}
				// The first item that has the field (optional fields are
				// set in some items only).
				i := 0
				for j, item := range n.Content {
					if !last && item.Kind == yaml.MappingNode && rest[1] != "[]" && indexOf(item, rest[1]) >= 0 {
						i = j
						break
					}
				}
				p := fmt.Sprintf("%s[%d]", at, i)
				if last {
					out = append(out, leafCase(p, n.Content[i], func(doc *yaml.Node) *yaml.Node { return nodeAt(doc, append(chain, i)) }))
					return
				}
				expand(n.Content[i], rest[1:], p, append(chain[:len(chain):len(chain)], i))
			case seg == "{key}":
				parent := append([]int(nil), chain...)
				out = append(out, hostileCase{path: at + "{key}", benign: "hlbenign", keyOf: at, set: func(doc *yaml.Node, value string) {
					m := nodeAt(doc, parent)
					val := &yaml.Node{Kind: yaml.ScalarNode, Value: "warning"}
					if len(m.Content) > 1 && m.Content[1].Kind == yaml.MappingNode {
						val = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str("enabled"), {Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"}}}
					}
					m.Content = append(m.Content, str(value), val)
				}})
			case seg == "{}":
				if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
					t.Errorf("schema field %s: %s is empty in the injection base; add an entry to testdata/config/injection/overlay.yaml", strings.Join(f, "."), at)
					return
				}
				for i := 0; i < len(n.Content); i += 2 {
					p := joinKey(at, n.Content[i].Value)
					if last {
						out = append(out, leafCase(p, n.Content[i+1], func(doc *yaml.Node) *yaml.Node { return nodeAt(doc, append(chain, i+1)) }))
						continue
					}
					expand(n.Content[i+1], rest[1:], p, append(chain[:len(chain):len(chain)], i+1))
				}
			default:
				if n.Kind != yaml.MappingNode {
					t.Errorf("schema field %s: %s is not a mapping in the injection base", strings.Join(f, "."), at)
					return
				}
				p := joinKey(at, seg)
				idx := -1
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == seg {
						idx = i + 1
					}
				}
				if last {
					parent := append([]int(nil), chain...)
					if idx < 0 {
						// An optional field the base leaves out: added.
						out = append(out, hostileCase{path: p, benign: "benign", set: func(doc *yaml.Node, value string) {
							m := nodeAt(doc, parent)
							m.Content = append(m.Content, str(seg), str(value))
						}})
						return
					}
					out = append(out, leafCase(p, n.Content[idx], func(doc *yaml.Node) *yaml.Node { return nodeAt(doc, append(parent, idx)) }))
					return
				}
				if idx < 0 {
					expand(nil, rest[1:], p, nil)
					return
				}
				expand(n.Content[idx], rest[1:], p, append(chain[:len(chain):len(chain)], idx))
			}
		}
		expand(base.Content[0], f, "", nil)
	}
	return out
}

func leafCase(p string, n *yaml.Node, at func(doc *yaml.Node) *yaml.Node) hostileCase {
	return hostileCase{path: p, benign: n.Value, set: func(doc *yaml.Node, value string) {
		*at(doc) = *str(value)
	}}
}

// valuesCases attacks the free-form spec.apps.<name>.values: every string
// leaf the base sets and a new key (name and value) at each values root.
func valuesCases(t *testing.T, base *yaml.Node) []hostileCase {
	t.Helper()
	apps := yamlnode.Path(base.Content[0], "spec", "apps")
	var out []hostileCase
	var scope []string
	for i := 0; i+1 < len(apps.Content); i += 2 {
		name := apps.Content[i].Value
		if indexOf(apps.Content[i+1], "values") < 0 {
			continue
		}
		comp, ok := templates.MustCatalog().Component(name)
		if !ok {
			t.Fatalf("spec.apps.%s: not a catalog component", name)
		}
		scope = append(scope, comp.Layer+"/"+name)
	}
	for i := 0; i+1 < len(apps.Content); i += 2 {
		name := apps.Content[i].Value
		vi := -1
		for j := 0; j+1 < len(apps.Content[i+1].Content); j += 2 {
			if apps.Content[i+1].Content[j].Value == "values" {
				vi = j + 1
			}
		}
		if vi < 0 {
			continue
		}
		chain := []int{indexOf(base.Content[0], "spec"), indexOf(yamlnode.Path(base.Content[0], "spec"), "apps"), i + 1, vi}

		root := joinKey("spec.apps."+name, "values")
		var walk func(n *yaml.Node, at string, chain []int)
		walk = func(n *yaml.Node, at string, chain []int) {
			switch n.Kind {
			case yaml.MappingNode:
				for j := 0; j+1 < len(n.Content); j += 2 {
					walk(n.Content[j+1], joinKey(at, n.Content[j].Value), append(chain[:len(chain):len(chain)], j+1))
				}
			case yaml.SequenceNode:
				for j, c := range n.Content {
					walk(c, fmt.Sprintf("%s[%d]", at, j), append(chain[:len(chain):len(chain)], j))
				}
			case yaml.ScalarNode:
				c := append([]int(nil), chain...)
				lc := leafCase(at, n, func(doc *yaml.Node) *yaml.Node { return nodeAt(doc, c) })
				lc.scope = scope
				out = append(out, lc)
			}
		}
		walk(apps.Content[i+1].Content[vi], root, chain)
		c := append([]int(nil), chain...)
		out = append(out,
			hostileCase{path: root + ".hlInjected", benign: "benign", scope: scope, set: func(doc *yaml.Node, value string) {
				m := nodeAt(doc, c)
				m.Content = append(m.Content, str("hlInjected"), str(value))
			}},
			hostileCase{path: root + "{key}", benign: "hlbenign", scope: scope, set: func(doc *yaml.Node, value string) {
				m := nodeAt(doc, c)
				m.Content = append(m.Content, str(value), str("benign"))
			}})
	}
	if len(out) == 0 {
		t.Fatal("the injection base sets no spec.apps.<name>.values")
	}
	return out
}

// checkValuesReadsCovered executes the component templates with an
// index function that records every key looked up in a component's
// values, and fails for a read the base does not set: that value would
// reach a template without being attacked. Templates must read values
// through index (a field access like .Values.x is refused here).
func checkValuesReadsCovered(t *testing.T, base *yaml.Node) {
	t.Helper()
	out, err := yaml.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := config.Parse("base.yaml", out)
	data, err := newData(doc.Homelab)
	if err != nil {
		t.Fatal(err)
	}
	tracked := map[uintptr]string{}
	reads := map[string]bool{}
	for name, c := range data.Components {
		if c.Values != nil {
			tracked[reflect.ValueOf(c.Values).Pointer()] = "spec.apps." + name + ".values"
		}
	}
	fm := funcs()
	fm["index"] = func(item any, keys ...any) (any, error) {
		v := reflect.ValueOf(item)
		for _, k := range keys {
			at, isTracked := "", false
			if v.Kind() == reflect.Map {
				at, isTracked = tracked[v.Pointer()]
			}
			next, err := indexOnce(v, k)
			if err != nil {
				return nil, err
			}
			if isTracked {
				p := joinKey(at, fmt.Sprint(k))
				reads[p] = true
				if next.IsValid() && next.Kind() == reflect.Interface {
					next = next.Elem()
				}
				if next.IsValid() && next.Kind() == reflect.Map {
					tracked[next.Pointer()] = p
				}
			}
			v = next
		}
		if !v.IsValid() {
			return nil, nil
		}
		return v.Interface(), nil
	}
	tree := templates.Tree()
	var paths []string
	err = fs.WalkDir(tree, ".", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fieldAccess := regexp.MustCompile(`\.Values\.[A-Za-z]`)
	for _, p := range paths {
		if !strings.HasSuffix(p, tmplSuffix) {
			continue
		}
		comp, ok := componentOf(p, data)
		if !ok {
			continue
		}
		src, err := fs.ReadFile(tree, p)
		if err != nil {
			t.Fatal(err)
		}
		if fieldAccess.Match(src) {
			t.Errorf("%s reads values by field access; use index so this test sees the read", p)
		}
		d := *data
		d.Component = comp
		if hasSegment(p, nodeSegment) {
			n := doc.Homelab.Spec.Metal.Nodes[0]
			d.Node = &n
		}
		tm, err := template.New(p).Option("missingkey=error").Funcs(fm).Parse(string(src))
		if err != nil {
			t.Fatal(err)
		}
		if err := tm.Execute(io.Discard, &d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	have := map[string]bool{}
	for _, c := range valuesCases(t, base) {
		for p := c.path; p != ""; p = parentOf(p) {
			have[p] = true
		}
	}
	for _, r := range sortedKeys(reads) {
		if !have[r] {
			t.Errorf("a template reads %s, which testdata/config/injection/overlay.yaml does not set: add it so hostile values reach it", r)
		}
	}
	if len(reads) == 0 {
		t.Error("no template read any spec.apps.<name>.values key: is the recording index broken?")
	}
}

// indexOnce is text/template's index for one key: a missing map key gives
// the zero value.
func indexOnce(v reflect.Value, k any) (reflect.Value, error) {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}, fmt.Errorf("index of nil")
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Map:
		kv := reflect.ValueOf(k)
		if !kv.Type().ConvertibleTo(v.Type().Key()) {
			return reflect.Value{}, fmt.Errorf("index: key %v for %s", k, v.Type())
		}
		r := v.MapIndex(kv.Convert(v.Type().Key()))
		if !r.IsValid() {
			return reflect.Zero(v.Type().Elem()), nil
		}
		return r, nil
	case reflect.Slice, reflect.Array, reflect.String:
		i, ok := k.(int)
		if !ok || i < 0 || i >= v.Len() {
			return reflect.Value{}, fmt.Errorf("index %v out of range", k)
		}
		return v.Index(i), nil
	}
	return reflect.Value{}, fmt.Errorf("cannot index %s", v.Type())
}

// scopedTrees caches the template tree cut down to some folders.
var (
	scopedMu    sync.Mutex
	scopedTrees = map[string]fs.FS{}
)

// scopedTree is the template tree cut down to the folders in scope (all
// of it for none).
func scopedTree(scope []string) (fs.FS, error) {
	tree := templates.Tree()
	key := strings.Join(scope, ",")
	if key == "" {
		return tree, nil
	}
	scopedMu.Lock()
	defer scopedMu.Unlock()
	if m, ok := scopedTrees[key]; ok {
		return m, nil
	}
	m := fstest.MapFS{}
	for _, dir := range scope {
		err := fs.WalkDir(tree, dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := fs.ReadFile(tree, p)
			m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("scope %s: %w", dir, err)
		}
	}
	scopedTrees[key] = m
	return m, nil
}

func planOf(t *testing.T, data []byte, scope []string) *Plan {
	t.Helper()
	doc, probs := config.Parse("hl.yaml", data)
	if len(probs.Errors()) > 0 {
		t.Fatalf("benign value rejected: %v", probs)
	}
	tree, err := scopedTree(scope)
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildPlan(context.Background(), doc.Homelab, Options{Templates: tree})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return p
}

// comparePlans checks that got (rendered with hostile) has want's shape
// (rendered with benign), file by file.
func comparePlans(t *testing.T, hostile, benign string, want, got *Plan) {
	t.Helper()
	wp, gp := want.Paths(), got.Paths()
	if !slicesEqual(wp, gp) {
		t.Errorf("%q: rendered files differ from the benign render: %v vs %v", hostile, gp, wp)
		return
	}
	for _, p := range gp {
		w, g := want.Files[p], got.Files[p]
		wc, gc := w.Content, g.Content
		if g.Secret != nil {
			// The declared values of a secret, before encryption.
			if reflect.DeepEqual(w.Secret, g.Secret) {
				continue
			}
			wc, gc = mustYAML(t, w.Secret.Spec), mustYAML(t, g.Secret.Spec)
			p += " (secret spec)"
		}
		if bytes.Equal(wc, gc) {
			continue
		}
		if err := sameShape(p, wc, gc, hostile, benign); err != nil {
			t.Errorf("%q: %v", hostile, err)
		}
		if strings.HasSuffix(p, ".sh") {
			cmd := exec.Command("bash", "-n")
			cmd.Stdin = bytes.NewReader(gc)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%q: %s does not parse as a shell script: %v\n%s", hostile, p, err, out)
			}
		}
	}
}

// sameShape compares a file rendered with the benign value (want) and
// with the hostile one (got).
func sameShape(p string, want, got []byte, hostile, benign string) error {
	switch path.Ext(strings.TrimSuffix(p, " (secret spec)")) {
	case ".yaml", ".yml":
		wd, err := yamlDocs(want)
		if err != nil {
			return fmt.Errorf("%s: benign render does not parse: %v", p, err)
		}
		gd, err := yamlDocs(got)
		if err != nil {
			return fmt.Errorf("%s: no longer parses as YAML: %v", p, err)
		}
		if len(wd) != len(gd) {
			return fmt.Errorf("%s: %d YAML documents, want %d", p, len(gd), len(wd))
		}
		for i := range wd {
			if err := sameNode(wd[i], gd[i], hostile, benign, true); err != nil {
				return fmt.Errorf("%s (document %d): %v", p, i, err)
			}
		}
		return nil
	case ".json":
		if !json.Valid(got) {
			return fmt.Errorf("%s: no longer valid JSON", p)
		}
	}
	// Any other format: the value may only appear through a quoting
	// function made for it (never raw).
	if !sameText(string(want), string(got), hostile, benign, false) {
		return fmt.Errorf("%s: the value is not written as data:\n%s", p, got)
	}
	return nil
}

func yamlDocs(b []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, &n)
	}
}

func sameNode(w, g *yaml.Node, hostile, benign string, rawOK bool) error {
	if w.Kind != g.Kind {
		return fmt.Errorf("line %d: %s where the benign render has %s", g.Line, kindName(g.Kind), kindName(w.Kind))
	}
	switch w.Kind {
	case yaml.ScalarNode:
		if w.Value != g.Value && !sameText(w.Value, g.Value, hostile, benign, rawOK) {
			return fmt.Errorf("line %d: %q where the benign render has %q", g.Line, g.Value, w.Value)
		}
		return nil
	case yaml.AliasNode:
		return nil
	}
	if len(w.Content) != len(g.Content) {
		return fmt.Errorf("line %d: %d nodes where the benign render has %d (a key or item was injected or lost)", g.Line, len(g.Content), len(w.Content))
	}
	if w.Kind == yaml.MappingNode {
		// Keys are matched by name: a key written from the value may sort
		// elsewhere than the benign one.
		used := map[int]bool{}
		for i := 0; i+1 < len(w.Content); i += 2 {
			j := -1
			for k := 0; k+1 < len(g.Content); k += 2 {
				if !used[k] && g.Content[k].Value == w.Content[i].Value {
					j = k
					break
				}
			}
			for k := 0; j < 0 && k+1 < len(g.Content); k += 2 {
				if !used[k] && sameNode(w.Content[i], g.Content[k], hostile, benign, rawOK) == nil {
					j = k
				}
			}
			if j < 0 {
				return fmt.Errorf("line %d: key %q of the benign render is missing", w.Content[i].Line, w.Content[i].Value)
			}
			used[j] = true
			if err := sameNode(w.Content[i+1], g.Content[j+1], hostile, benign, rawOK); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range w.Content {
		if err := sameNode(w.Content[i], g.Content[i], hostile, benign, rawOK); err != nil {
			return err
		}
	}
	return nil
}

func kindName(k yaml.Kind) string {
	return map[yaml.Kind]string{yaml.DocumentNode: "a document", yaml.SequenceNode: "a list", yaml.MappingNode: "a mapping", yaml.ScalarNode: "a scalar", yaml.AliasNode: "an alias"}[k]
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// sameText reports whether got is want with the benign value replaced by
// the hostile one, each time through one of the quoting functions (or
// raw, where rawOK: inside a parsed YAML scalar the value is data). A
// checksum of content that holds the value may differ.
func sameText(want, got, hostile, benign string, rawOK bool) bool {
	if sha256Hex.MatchString(want) && sha256Hex.MatchString(got) {
		return true
	}
	encoders := []func(any) (string, error){
		shQuote, jmespathLiteral, csvField, yamlQuote,
		func(s any) (string, error) { q, err := yamlQuote(s); return strings.Trim(q, `"`), err },
		func(s any) (string, error) { return template.HTMLEscapeString(s.(string)), nil },
	}
	if rawOK {
		// Raw in a parsed YAML scalar is data, unless the scalar is
		// itself a language (JMESPath, PromQL, shell, CSV) that quotes
		// the value: a raw value right inside quotes is a string literal
		// the template did not escape.
		if quotedRaw(got, hostile) {
			return false
		}
		encoders = append(encoders, func(s any) (string, error) { return s.(string), nil })
	}
	for _, enc := range encoders {
		h, err1 := enc(hostile)
		b, err2 := enc(benign)
		if err1 != nil || err2 != nil || h == b || h == "" {
			continue
		}
		got = strings.ReplaceAll(got, h, b)
	}
	return got == want
}

// quotedRaw reports whether v occurs in s between quote characters.
func quotedRaw(s, v string) bool {
	for i := strings.Index(s, v); i >= 0; {
		end := i + len(v)
		if i > 0 && end < len(s) && strings.IndexByte("'\"`", s[i-1]) >= 0 && s[i-1] == s[end] {
			return true
		}
		j := strings.Index(s[i+1:], v)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func cloneNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = cloneNode(k)
	}
	return &c
}

// nodeAt follows Content indexes from a document's top mapping.
func nodeAt(doc *yaml.Node, chain []int) *yaml.Node {
	n := doc.Content[0]
	for _, i := range chain {
		n = n.Content[i]
	}
	return n
}

func indexOf(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i + 1
		}
	}
	return -1
}

var simpleKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey is config's field path syntax: a.b, or a["odd key"].
func joinKey(at, key string) string {
	if !simpleKeyRe.MatchString(key) {
		return at + "[" + strconv.Quote(key) + "]"
	}
	if at == "" {
		return key
	}
	return at + "." + key
}

func parentOf(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	sort.Strings(a)
	sort.Strings(b)
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
