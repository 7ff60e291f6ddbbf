package wizard

import (
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/yamlnode"
)

// The helpers here edit an hl.yaml node tree in place: a value that did
// not change keeps its node (and so its comments and quoting); a missing
// key is inserted after its nearest preceding sibling in the order of the
// config types, so a hand-written file keeps its layout.

// path is a list of mapping keys from the document's top mapping.
type path []string

// top returns the document's top mapping, creating it in an empty document.
func top(root *yaml.Node) *yaml.Node {
	if root.Kind != yaml.DocumentNode {
		return root
	}
	if len(root.Content) == 0 {
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
	}
	return root.Content[0]
}

// lookup returns the value node at p, or nil.
func lookup(root *yaml.Node, p path) *yaml.Node {
	n := top(root)
	for _, k := range p {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		_, v := yamlnode.Pair(n, k)
		if v == nil {
			return nil
		}
		n = v
	}
	return n
}

// ensureMap returns the mapping at p, creating missing mappings (and
// replacing a null or scalar placeholder) on the way.
func ensureMap(root *yaml.Node, p path) *yaml.Node {
	n := top(root)
	for i, k := range p {
		_, v := yamlnode.Pair(n, k)
		if v == nil {
			v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			insertKey(n, p[:i], k, v)
		} else if v.Kind != yaml.MappingNode {
			*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: v.HeadComment, LineComment: v.LineComment, FootComment: v.FootComment}
		}
		n = v
	}
	return n
}

// insertKey adds k: v to mapping m (which sits at parent) after the last
// key that precedes k in the config types' field order.
func insertKey(m *yaml.Node, parent path, k string, v *yaml.Node) {
	order := fieldOrder(parent)
	want := slices.Index(order, k)
	at := len(m.Content)
	if want >= 0 {
		at = 0
		for i := 0; i+1 < len(m.Content); i += 2 {
			if j := slices.Index(order, m.Content[i].Value); j >= 0 && j < want {
				at = i + 2
			}
		}
		if at == 0 && len(m.Content) > 0 {
			// Nothing known precedes it: keep it before the first known
			// follower, after any leading unknown keys.
			at = len(m.Content)
			for i := 0; i+1 < len(m.Content); i += 2 {
				if j := slices.Index(order, m.Content[i].Value); j > want {
					at = i
					break
				}
			}
		}
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}
	m.Content = slices.Insert(m.Content, at, key, v)
}

// fieldOrder lists the json field names of the config type at p.
func fieldOrder(p path) []string {
	t := reflect.TypeOf(config.Homelab{})
	for _, k := range p {
		t = deref(t)
		if t.Kind() == reflect.Map {
			t = deref(t.Elem())
			continue
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		found := false
		for i := range t.NumField() {
			if jsonName(t.Field(i)) == k {
				t, found = t.Field(i).Type, true
				break
			}
		}
		if !found {
			return nil
		}
	}
	t = deref(t)
	if t.Kind() == reflect.Slice {
		t = deref(t.Elem())
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		out = append(out, jsonName(t.Field(i)))
	}
	return out
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func jsonName(f reflect.StructField) string {
	return strings.Split(f.Tag.Get("json"), ",")[0]
}

// setStr sets the string at p. When the key is absent and val equals def
// (the value config.ApplyDefaults would give it), nothing is written, so
// defaults stay implicit.
func setStr(root *yaml.Node, p path, val, def string) {
	m := ensureMapFor(root, p, val == def)
	if m == nil {
		return
	}
	setKey(m, p[:len(p)-1], p[len(p)-1], val, def)
}

// setKey sets k in mapping m (whose config type is at parent) and returns
// its value node (nil when nothing was written) and whether it changed.
func setKey(m *yaml.Node, parent path, k, val, def string) (*yaml.Node, bool) {
	_, v := yamlnode.Pair(m, k)
	if v == nil {
		if val == def {
			return nil, false
		}
		v = strNode(val)
		insertKey(m, parent, k, v)
		return v, true
	}
	before := *v
	setScalar(v, val, "!!str")
	return v, before.Value != v.Value || before.Kind != v.Kind
}

// removeKey deletes k from the mapping at p's parent, if present.
func removeKey(root *yaml.Node, p path) {
	m := lookup(root, p[:len(p)-1])
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	yamlnode.Delete(m, p[len(p)-1])
}

// ensureMapFor returns the parent mapping of p; with onlyIfPresent it
// does not create missing parents (returns nil instead).
func ensureMapFor(root *yaml.Node, p path, onlyIfPresent bool) *yaml.Node {
	parent := p[:len(p)-1]
	if onlyIfPresent {
		m := lookup(root, parent)
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		return m
	}
	return ensureMap(root, parent)
}

// setScalar changes n to the scalar val, keeping its style and comments
// when the value is the same.
func setScalar(n *yaml.Node, val, tag string) {
	if n.Kind == yaml.ScalarNode && n.Value == val && (n.Tag == tag || n.Tag == "") {
		return
	}
	if n.Kind != yaml.ScalarNode {
		*n = yaml.Node{Kind: yaml.ScalarNode, HeadComment: n.HeadComment, LineComment: n.LineComment, FootComment: n.FootComment}
	}
	if n.Value == "" {
		// A quoted "" placeholder becomes a plain value (the encoder
		// still quotes what needs it).
		n.Style &^= yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
	}
	n.Value, n.Tag = val, tag
	if tag != "!!str" {
		n.Style = 0
	}
}

func strNode(val string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: boolStr(b)}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// setStrList sets the string list at p, reusing the nodes of values that
// stay (and their comments). An absent key equal to def is not written;
// an empty list with omitEmpty removes the key.
func setStrList(root *yaml.Node, p path, vals, def []string, omitEmpty bool) {
	m := ensureMapFor(root, p, slices.Equal(vals, def) || (omitEmpty && len(vals) == 0))
	if m == nil {
		return
	}
	k := p[len(p)-1]
	_, seq := yamlnode.Pair(m, k)
	if seq == nil {
		if slices.Equal(vals, def) || (omitEmpty && len(vals) == 0) {
			return
		}
		seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		insertKey(m, p[:len(p)-1], k, seq)
	}
	if omitEmpty && len(vals) == 0 {
		removeKey(root, p)
		return
	}
	if seq.Kind != yaml.SequenceNode {
		*seq = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", HeadComment: seq.HeadComment, LineComment: seq.LineComment}
	}
	var have []string
	for _, c := range seq.Content {
		have = append(have, c.Value)
	}
	if slices.Equal(have, vals) {
		return
	}
	old := map[string]*yaml.Node{}
	for _, c := range seq.Content {
		if c.Kind == yaml.ScalarNode {
			old[c.Value] = c
		}
	}
	content := make([]*yaml.Node, 0, len(vals))
	for _, v := range vals {
		if n, ok := old[v]; ok {
			content = append(content, n)
			delete(old, v)
			continue
		}
		content = append(content, strNode(v))
	}
	if len(seq.Content) == 0 && len(content) > 0 && seq.Style == yaml.FlowStyle && longest(vals) > 20 {
		// An empty placeholder ([]) filled with long values reads better
		// as a block list.
		seq.Style = 0
	}
	seq.Content = content
}

func longest(ss []string) int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s))
	}
	return n
}

// cloneNode deep-copies a node tree (aliases point into the copy).
func cloneNode(n *yaml.Node) *yaml.Node {
	seen := map[*yaml.Node]*yaml.Node{}
	var clone func(*yaml.Node) *yaml.Node
	clone = func(n *yaml.Node) *yaml.Node {
		if n == nil {
			return nil
		}
		if c, ok := seen[n]; ok {
			return c
		}
		c := *n
		seen[n] = &c
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			c.Content[i] = clone(ch)
		}
		c.Alias = clone(n.Alias)
		return &c
	}
	return clone(n)
}
