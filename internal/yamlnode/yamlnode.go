// Package yamlnode holds the lookups in yaml.v3 node trees that every
// package editing YAML in place needs (config migration, the wizard,
// validate's positions, rotation's consumer edits), so there is one of
// each.
package yamlnode

import "gopkg.in/yaml.v3"

// Pair returns the key and value nodes of key in mapping m; nil, nil when
// m is not a mapping or lacks key. The first pair wins (hl's loaders
// reject duplicate keys before anything looks them up).
func Pair(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// Value returns the value node of key in mapping m, or nil.
func Value(m *yaml.Node, key string) *yaml.Node {
	_, v := Pair(m, key)
	return v
}

// Key returns the key node of key in mapping m (for its position), or nil.
func Key(m *yaml.Node, key string) *yaml.Node {
	k, _ := Pair(m, key)
	return k
}

// Path follows keys through nested mappings; nil when any step is missing.
func Path(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n = Value(n, k); n == nil {
			return nil
		}
	}
	return n
}

// Delete removes key and its value from mapping m and reports whether it
// was there.
func Delete(m *yaml.Node, key string) bool {
	if m == nil || m.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return true
		}
	}
	return false
}
