package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/yamlnode"
)

// yamlDoc is one document of a YAML file, with its node tree for lines.
type yamlDoc struct {
	// root is the document's content node (usually a mapping).
	root *yaml.Node
	// value is the document decoded into generic Go values with string
	// keys (JSON-compatible).
	value any
}

// line of the document's first node.
func (d *yamlDoc) line() int {
	if d.root == nil {
		return 1
	}
	return d.root.Line
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

// yamlError is a parse error with the line it happened on.
type yamlError struct {
	Line int
	Msg  string
}

func (e *yamlError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

func newYAMLError(err error) *yamlError {
	msg := err.Error()
	line := 1
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = yamlLineRe.ReplaceAllString(msg, "")
	msg = strings.TrimLeft(strings.TrimPrefix(strings.TrimSpace(msg), ":"), " ")
	return &yamlError{Line: line, Msg: msg}
}

// parseYAML splits a multi-document stream into documents. Empty
// documents are dropped. The error is a *yamlError.
func parseYAML(data []byte) ([]*yamlDoc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yamlDoc
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, newYAMLError(err)
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		var v any
		if err := n.Decode(&v); err != nil {
			e := newYAMLError(err)
			if e.Line == 1 {
				e.Line = root.Line
			}
			return docs, e
		}
		docs = append(docs, &yamlDoc{root: root, value: normalize(v)})
	}
}

// normalize turns YAML-decoded values into JSON-compatible ones
// (map[string]any keys).
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	}
	return v
}

// splitPath splits a field path like spec.containers[0].image or
// /spec/containers/0/image into segments; indices become "[0]".
func splitPath(p string) []string {
	if strings.HasPrefix(p, "/") {
		var out []string
		for _, s := range strings.Split(p[1:], "/") {
			s = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
			out = append(out, s)
		}
		return out
	}
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '.':
			flush()
		case '[':
			flush()
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				cur.WriteString(p[i:])
				i = len(p)
				continue
			}
			out = append(out, p[i:i+j+1])
			i += j
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// joinPath renders segments as a dotted path with [i] indices.
func joinPath(segs []string) string {
	var b strings.Builder
	for _, s := range segs {
		if _, err := strconv.Atoi(s); err == nil {
			b.WriteString("[" + s + "]")
			continue
		}
		if strings.HasPrefix(s, "[") {
			b.WriteString(s)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// lineOf returns the line of the deepest node of path that exists under
// root: the key's line for a mapping entry (so an unknown field points at
// its key). A key segment met at a sequence descends into the first item
// that has the key (paths from type errors carry no indices).
func lineOf(root *yaml.Node, path []string) int {
	if root == nil {
		return 0
	}
	n := root
	line := root.Line
	for _, seg := range path {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch n.Kind {
		case yaml.MappingNode:
			k, v := yamlnode.Pair(n, seg)
			if k == nil {
				return line
			}
			line, n = k.Line, v
		case yaml.SequenceNode:
			idx := -1
			if strings.HasPrefix(seg, "[") {
				idx, _ = strconv.Atoi(strings.Trim(seg, "[]"))
			} else if v, err := strconv.Atoi(seg); err == nil {
				idx = v
			}
			if idx >= 0 {
				if idx >= len(n.Content) {
					return line
				}
				n = n.Content[idx]
				line = n.Line
				continue
			}
			// A key without an index: the first item that has it.
			var next *yaml.Node
			for _, item := range n.Content {
				if k, v := yamlnode.Pair(item, seg); k != nil {
					line, next = k.Line, v
					break
				}
			}
			if next == nil {
				return line
			}
			n = next
		default:
			return line
		}
	}
	return line
}

// mapGet walks nested maps by keys.
func mapGet(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func mapStr(v any, keys ...string) string {
	s, _ := mapGet(v, keys...).(string)
	return s
}

func mapMap(v any, keys ...string) map[string]any {
	m, _ := mapGet(v, keys...).(map[string]any)
	return m
}

func mapList(v any, keys ...string) []any {
	l, _ := mapGet(v, keys...).([]any)
	return l
}
