// Package yamlpos owns the one place where extractors turn YAML nodes into
// byte ranges: yaml.v3 reports 1-based lines and rune columns, the bot edits
// bytes, and a range is only handed out when the bytes at it are exactly
// the scalar's value (so escapes, folded or block scalars are never edited).
package yamlpos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/bot"
)

// File is a parsed YAML stream with its bytes.
type File struct {
	Content []byte
	// Docs are the root nodes of every non-empty document, in order.
	Docs       []*yaml.Node
	lineStarts []int
}

// Parse decodes every document of content. A syntax error anywhere fails
// the whole file: a file yaml.v3 cannot read is not edited.
func Parse(content []byte) (*File, error) {
	f := &File{Content: content}
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
			f.Docs = append(f.Docs, doc.Content[0])
		}
	}
	return f, nil
}

// Offset converts a 1-based line and rune column into a byte offset.
func (f *File) Offset(line, col int) int {
	if f.lineStarts == nil {
		f.lineStarts = append(make([]int, 0, 64), 0)
		for i, b := range f.Content {
			if b == '\n' {
				f.lineStarts = append(f.lineStarts, i+1)
			}
		}
	}
	if line < 1 || line > len(f.lineStarts) {
		return -1
	}
	off := f.lineStarts[line-1]
	for c := 1; c < col && off < len(f.Content); c++ {
		if f.Content[off] < utf8.RuneSelf {
			off++
			continue
		}
		_, size := utf8.DecodeRune(f.Content[off:])
		off += size
	}
	return off
}

// ScalarRange returns the byte range of a single-line scalar's value
// (inside its quotes, if any).
func (f *File) ScalarRange(n *yaml.Node) (bot.Range, bool) {
	return f.SubRange(n, 0, len(n.Value))
}

// SubRange returns the byte range of n.Value[from:to] for a scalar whose
// bytes in the file are exactly its value.
func (f *File) SubRange(n *yaml.Node, from, to int) (bot.Range, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || from < 0 || to > len(n.Value) || from > to {
		return bot.Range{}, false
	}
	start := f.Offset(n.Line, n.Column)
	if start < 0 {
		return bot.Range{}, false
	}
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		start++
	case 0, yaml.FlowStyle:
	default: // literal, folded: the value is not the bytes
		return bot.Range{}, false
	}
	end := start + len(n.Value)
	if end > len(f.Content) || string(f.Content[start:end]) != n.Value {
		return bot.Range{}, false
	}
	return bot.Range{Start: start + from, End: start + to}, true
}

// Get returns the value of key in mapping m, or nil.
func Get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Str returns the value of a scalar node (false for anything else).
func Str(n *yaml.Node) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", false
	}
	return n.Value, true
}

// GetStr is Str(Get(m, key)).
func GetStr(m *yaml.Node, key string) string {
	s, _ := Str(Get(m, key))
	return s
}

// Path walks mapping keys; a nil result means some key was missing.
func Path(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = Get(n, k)
	}
	return n
}

// Visit calls fn for every mapping entry under n, depth first, with the
// chain of keys leading to it (list items add no key). fn returning false
// stops descent into that value.
func Visit(n *yaml.Node, fn func(path []string, key, val *yaml.Node) bool) {
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := append(path[:len(path):len(path)], k.Value)
				if fn(p, k, v) {
					walk(v, p)
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		}
	}
	walk(n, nil)
}

// Kind returns a manifest's apiVersion and kind ("" when absent).
func Kind(doc *yaml.Node) (apiVersion, kind string) {
	return GetStr(doc, "apiVersion"), GetStr(doc, "kind")
}

// Where formats a node's position for messages.
func Where(n *yaml.Node) string { return fmt.Sprintf("%d:%d", n.Line, n.Column) }

// HasAny reports whether content holds any of the needles; extractors use
// it to skip parsing files that cannot contain what they look for.
func HasAny(content []byte, needles ...string) bool {
	for _, s := range needles {
		if bytes.Contains(content, []byte(s)) {
			return true
		}
	}
	return false
}

// IsYAML reports whether path names a YAML file.
func IsYAML(path string) bool {
	return strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")
}
