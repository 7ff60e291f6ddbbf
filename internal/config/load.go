package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a 1-based line and column in the source file.
type Pos struct{ Line, Column int }

// Document is a loaded hl.yaml: the typed model with defaults applied, the
// YAML tree (for edits that keep comments) and where every field was.
type Document struct {
	File    string
	Homelab *Homelab
	// Root is the YAML document node after migration to the current
	// version; editing it and encoding it keeps comments and key order.
	Root *yaml.Node
	// Migrated is set when Root was migrated from an older apiVersion.
	Migrated []string
	pos      map[string]Pos
}

// PosOf returns where the field at path (or its nearest present parent)
// is in the source file.
func (d *Document) PosOf(path string) Pos {
	for p := path; ; {
		if pos, ok := d.pos[p]; ok {
			return pos
		}
		if p == "" {
			return Pos{}
		}
		p = parentPath(p)
	}
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

// Load reads, migrates, decodes strictly, applies defaults and validates
// the file at path. On any error-severity problem it returns the document
// as far as it was decoded together with a Problems error listing every
// problem found.
func Load(path string) (*Document, Problems, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	doc, probs := Parse(path, data)
	return doc, probs, probsErr(probs)
}

func probsErr(ps Problems) error {
	if len(ps.Errors()) > 0 {
		return ps
	}
	return nil
}

// Parse is Load on bytes; file names the source in problems. It never
// fails fast: every problem found is returned, sorted by position.
func Parse(file string, data []byte) (*Document, Problems) {
	doc := &Document{File: file, pos: map[string]Pos{}}
	d := &decoder{file: file, pos: doc.pos}
	root, err := parseYAML(data)
	if err != nil {
		d.problem(Pos{Line: yamlErrLine(err), Column: 1}, "", "%s", cleanYAMLErr(err))
		return doc, d.probs
	}
	doc.Root = root
	if len(root.Content) == 0 {
		d.problem(Pos{1, 1}, "", "file is empty: expected an hl.yaml document (apiVersion: %s, kind: %s)", APIVersion, Kind)
		return doc, d.probs
	}
	migrated, err := migrate(root, migrations)
	doc.Migrated = migrated
	if err != nil {
		top := root.Content[0]
		d.problem(Pos{top.Line, top.Column}, "apiVersion", "%v", err)
		return doc, d.probs
	}
	h := &Homelab{}
	d.decode(root.Content[0], reflect.ValueOf(h).Elem(), "")
	doc.Homelab = h
	// Validate what did decode, so one pass reports everything; fields
	// that failed to decode already have their problem and are skipped.
	ApplyDefaults(h)
	probs := d.probs
	for _, p := range Validate(h, doc) {
		if !underAny(p.Path, d.bad) {
			probs = append(probs, p)
		}
	}
	probs.sort()
	return doc, probs
}

// parseYAML parses exactly one YAML document into a node tree.
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, errEOF) || err.Error() == "EOF" {
			return &yaml.Node{Kind: yaml.DocumentNode}, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("yaml: line %d: a second YAML document starts here; hl.yaml holds exactly one", extra.Line)
	}
	return &root, nil
}

var errEOF = errors.New("EOF")

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 1
}

func cleanYAMLErr(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	return "invalid YAML: " + yamlLineRe.ReplaceAllString(strings.TrimPrefix(s, "line "+strconv.Itoa(yamlErrLine(err))+": "), "line $1")
}

// decoder maps a YAML node tree onto Go values by the json field names,
// collecting every unknown key, duplicate key and type mismatch instead of
// stopping at the first.
type decoder struct {
	file  string
	probs Problems
	pos   map[string]Pos
	// bad holds the paths that failed to decode.
	bad []string
}

// underAny reports whether path is one of roots or inside one.
func underAny(path string, roots []string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+".") || strings.HasPrefix(path, r+"[") {
			return true
		}
	}
	return false
}

func (d *decoder) problem(p Pos, path, format string, args ...any) {
	d.bad = append(d.bad, path)
	d.probs = append(d.probs, Problem{File: d.file, Line: p.Line, Column: p.Column, Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityError})
}

func nodePos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int":
		return "the integer " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!null":
		return "null"
	}
	return n.ShortTag() + " " + n.Value
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = nodePos(n)
	}
	isNull := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	switch v.Kind() {
	case reflect.Pointer:
		if isNull {
			return
		}
		nv := reflect.New(v.Type().Elem())
		d.decode(n, nv.Elem(), path)
		v.Set(nv)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.problem(nodePos(n), path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.Struct:
		if isNull {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.problem(nodePos(n), path, "expected a mapping, got %s", describe(n))
			return
		}
		fields := fieldsOf(v.Type())
		d.eachPair(n, path, func(key, val *yaml.Node) {
			i, ok := fields[key.Value]
			if !ok {
				d.problem(nodePos(key), joinPath(path, key.Value), "unknown field %q%s", key.Value, suggest(key.Value, v.Type()))
				return
			}
			d.decode(val, v.Field(i), joinPath(path, key.Value))
		})
	case reflect.Map:
		if isNull {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.problem(nodePos(n), path, "expected a mapping, got %s", describe(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		d.eachPair(n, path, func(key, val *yaml.Node) {
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, joinPath(path, key.Value))
			v.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), ev)
		})
	case reflect.Slice:
		if isNull {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.problem(nodePos(n), path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if isNull {
			return
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!bool" || n.ShortTag() == "!!binary" {
			hint := ""
			if n.ShortTag() == "!!bool" {
				hint = " (quote it if you mean the text)"
			}
			d.problem(nodePos(n), path, "expected a string, got %s%s", describe(n), hint)
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil || v.OverflowInt(i) {
			d.problem(nodePos(n), path, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || err != nil {
			d.problem(nodePos(n), path, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.problem(nodePos(n), path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	default:
		panic(fmt.Sprintf("config: no decoder for %s", v.Type()))
	}
}

// eachPair walks a mapping's key/value pairs, reporting duplicate keys,
// non-scalar keys and merge keys instead of passing them on.
func (d *decoder) eachPair(n *yaml.Node, path string, fn func(key, val *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.problem(nodePos(key), path, "mapping keys must be plain strings, got %s", describe(key))
			continue
		}
		if key.ShortTag() == "!!merge" {
			d.problem(nodePos(key), path, "merge keys (<<) are not supported in hl.yaml; write the fields out")
			continue
		}
		if first, dup := seen[key.Value]; dup {
			d.problem(nodePos(key), joinPath(path, key.Value), "duplicate key %q (first defined at line %d)", key.Value, first.Line)
			continue
		}
		seen[key.Value] = key
		fn(key, val)
	}
}

var simpleKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func joinPath(path, key string) string {
	if !simpleKey.MatchString(key) {
		key = strconv.Quote(key)
		return path + "[" + key + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var fieldCache = map[reflect.Type]map[string]int{}

// fieldsOf maps json names to field indexes. Types are known at compile
// time and few, so the cache is filled on first use under init-time calls.
func fieldsOf(t reflect.Type) map[string]int {
	if m, ok := fieldCache[t]; ok {
		return m
	}
	m := map[string]int{}
	for i := range t.NumField() {
		name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func init() {
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		if _, ok := fieldCache[t]; ok {
			return
		}
		fieldCache[t] = fieldsOf(t)
		for i := range t.NumField() {
			walk(t.Field(i).Type)
		}
	}
	walk(reflect.TypeOf(Homelab{}))
}

// suggest proposes the closest known field name for a misspelt key.
func suggest(key string, t reflect.Type) string {
	best, bestD := "", 4
	for name := range fieldsOf(t) {
		if dist := levenshtein(strings.ToLower(key), strings.ToLower(name)); dist < bestD || (dist == bestD && name < best) {
			best, bestD = name, dist
		}
	}
	if best == "" || bestD > len(key)/2+1 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
