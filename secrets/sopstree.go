package secrets

// The sops document model and its YAML mapping, ported from
// github.com/getsops/sops/v3 (sops.go: TreeItem, TreeBranch, Comment,
// equals) and github.com/getsops/sops/v3/stores/yaml (store.go) at the
// version in go.mod. The mapping has to match the library's exactly: the
// MAC covers the values in walk order, and Decrypt output is compared byte
// for byte by the generator's golden tests and by compat_test.go.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// comment is a comment line (without its '#') in a tree, as a map key with
// a nil value, or as a sequence item. The exported field names mirror
// sops.Comment so that a comment found in a value position (which only a
// hand-made file can produce) marshals as the library marshals it.
type comment struct {
	Value  string
	Inline bool
}

// treeItem is a key/value pair of a mapping. Keys are strings, comments, or
// whatever other scalar YAML decoded (the walk rejects those).
type treeItem struct {
	Key   any
	Value any
}

// treeBranch is an ordered mapping: the whole document, or a nested map.
// Values are treeBranch, []any (sequences) or scalars as yaml.v3 decodes
// them into an interface (string, int, float64, bool, time.Time, nil...),
// or comment in sequences.
type treeBranch []treeItem

// sopsMetadataKey is the top-level key holding the sops metadata.
const sopsMetadataKey = "sops"

// errMetadataNotFound is sops.MetadataNotFound.
var errMetadataNotFound = errors.New("sops metadata not found")

// ---- loading (stores/yaml LoadPlainFile) ----

// loadPlain parses every document of a YAML stream into a tree branch,
// keeping comments as the sops YAML store does.
func loadPlain(in []byte) ([]treeBranch, error) {
	var branches []treeBranch
	d := yaml.NewDecoder(bytes.NewReader(in))
	for i := 0; ; i++ {
		var doc yaml.Node
		err := d.Decode(&doc)
		if err == io.EOF {
			if i == 0 && len(in) > 0 {
				// sops first decodes the input into a map to make
				// yaml.v3 check keys for uniqueness, and returns that
				// decoder's io.EOF for input without documents.
				return nil, err
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("Error unmarshaling input YAML: %s", err)
		}
		if i == 0 {
			// The uniqueness check of the library, on the parsed node
			// instead of a second parse of the text: the same decoder
			// code runs on the same node.
			if err := doc.Decode(&map[string]any{}); err != nil {
				return nil, err
			}
		}
		branch, err := appendNodeToBranch(&doc, make(treeBranch, 0), false)
		if err != nil {
			return nil, fmt.Errorf("Error unmarshaling input YAML: %s", err)
		}
		branches = append(branches, branch)
	}
	return branches, nil
}

func appendCommentsToList(c string, list []any, inline bool) []any {
	if c != "" {
		for _, line := range strings.Split(c, "\n") {
			if line != "" {
				list = append(list, comment{Value: line[1:], Inline: inline})
			}
		}
	}
	return list
}

func appendCommentsToBranch(c string, branch treeBranch, inline bool) treeBranch {
	if c != "" {
		for _, line := range strings.Split(c, "\n") {
			if line != "" {
				branch = append(branch, treeItem{Key: comment{Value: line[1:], Inline: inline}})
			}
		}
	}
	return branch
}

// scalarValue is node.Decode(&v) into an interface, with a shortcut for
// strings (the bulk of a Secret), which yaml.v3 decodes to node.Value.
// Decoding errors leave nil, as in the library.
func scalarValue(node *yaml.Node) any {
	if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!str" {
		return node.Value
	}
	var v any
	_ = node.Decode(&v)
	return v
}

func nodeToTreeValue(node *yaml.Node, commentsWereHandled bool) (any, error) {
	switch node.Kind {
	case yaml.DocumentNode:
		return nil, errors.New("documents should never be passed here")
	case yaml.SequenceNode:
		var result []any
		if !commentsWereHandled {
			result = appendCommentsToList(node.HeadComment, result, false)
			result = appendCommentsToList(node.LineComment, result, false)
		}
		for _, item := range node.Content {
			result = appendCommentsToList(item.HeadComment, result, false)
			result = appendCommentsToList(item.LineComment, result, true)
			val, err := nodeToTreeValue(item, true)
			if err != nil {
				return nil, err
			}
			result = append(result, val)
			result = appendCommentsToList(item.FootComment, result, false)
		}
		if !commentsWereHandled {
			result = appendCommentsToList(node.FootComment, result, false)
		}
		return result, nil
	case yaml.MappingNode:
		return appendNodeToBranch(node, make(treeBranch, 0), commentsWereHandled)
	case yaml.ScalarNode:
		return scalarValue(node), nil
	case yaml.AliasNode:
		return nodeToTreeValue(node.Alias, false)
	}
	return nil, nil
}

func appendNodeToBranch(node *yaml.Node, branch treeBranch, commentsWereHandled bool) (treeBranch, error) {
	var err error
	if !commentsWereHandled {
		branch = appendCommentsToBranch(node.HeadComment, branch, false)
		branch = appendCommentsToBranch(node.LineComment, branch, false)
	}
	switch node.Kind {
	case yaml.DocumentNode:
		for _, item := range node.Content {
			branch, err = appendNodeToBranch(item, branch, false)
			if err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		return nil, errors.New("YAML documents that are sequences are not supported")
	case yaml.MappingNode:
		for i := 0; i+1 < len(node.Content); i += 2 {
			key := node.Content[i]
			value := node.Content[i+1]
			branch = appendCommentsToBranch(key.HeadComment, branch, false)
			branch = appendCommentsToBranch(key.LineComment, branch, false)
			handleValueComments := value.Kind == yaml.ScalarNode || value.Kind == yaml.AliasNode
			if handleValueComments {
				branch = appendCommentsToBranch(value.HeadComment, branch, false)
				branch = appendCommentsToBranch(value.LineComment, branch, true)
			}
			keyValue := scalarValue(key)
			v, err := nodeToTreeValue(value, handleValueComments)
			if err != nil {
				return nil, err
			}
			branch = append(branch, treeItem{Key: keyValue, Value: v})
			if handleValueComments {
				branch = appendCommentsToBranch(value.FootComment, branch, false)
			}
			branch = appendCommentsToBranch(key.FootComment, branch, false)
		}
	case yaml.ScalarNode:
		// An empty document with a document start marker and no comments
		// is null.
		if node.ShortTag() == "!!null" {
			return branch, nil
		}
		return nil, errors.New("YAML documents that are values are not supported")
	case yaml.AliasNode:
		branch, err = appendNodeToBranch(node.Alias, branch, false)
		if err != nil {
			return nil, err
		}
	}
	if !commentsWereHandled {
		branch = appendCommentsToBranch(node.FootComment, branch, false)
	}
	return branch, nil
}

// ---- emitting (stores/yaml EmitPlainFile) ----

// emitter turns trees into yaml.Nodes as the library does. The library
// builds every scalar node (map keys and leaf values) with its own
// node.Encode(v) call, which marshals v to a YAML document and parses it
// back; that round trip per scalar was most of the library's emitting
// time. emitter does the same marshal and parse once for the scalars whose
// emitted form cannot depend on where they stand, as the items of one block
// sequence: each item is marshalled by the same encoder code as a document
// root, on one line, and parsed back into the same node (kind, tag, style,
// value). Block scalars can depend on it (yaml.v3 writes a wrong
// indentation indicator for a literal starting with a line break inside a
// sequence), so strings containing a line break, invalid UTF-8 (which
// becomes base64 !!binary, broken into lines) and non-scalar leaves get
// their own node.Encode call, as in the library.
// TestEmitScalarsLikeNodeEncode and FuzzEmitScalarString check this.
type emitter struct {
	scalars []any
	nodes   []*yaml.Node
}

func (em *emitter) collectBranch(branch treeBranch) {
	for _, item := range branch {
		if _, ok := item.Key.(comment); ok {
			continue
		}
		em.scalars = append(em.scalars, item.Key)
		em.collectValue(item.Value)
	}
}

func (em *emitter) collectValue(v any) {
	switch v := v.(type) {
	case treeBranch:
		em.collectBranch(v)
	case []any:
		for _, item := range v {
			if _, ok := item.(comment); !ok {
				em.collectValue(item)
			}
		}
	default:
		em.scalars = append(em.scalars, v)
	}
}

// batchable reports whether v's node can be encoded with other scalars.
func batchable(v any) bool {
	switch v := v.(type) {
	case nil, int, bool, float64, time.Time:
		return true
	case string:
		return utf8.ValidString(v) && !strings.ContainsAny(v, "\n\r\u0085\u2028\u2029")
	default:
		return false
	}
}

// encodeScalars marshals the collected scalars into nodes.
func (em *emitter) encodeScalars() error {
	em.nodes = make([]*yaml.Node, len(em.scalars))
	var batch []any
	for i, v := range em.scalars {
		if batchable(v) {
			batch = append(batch, v)
			continue
		}
		n := &yaml.Node{}
		if err := n.Encode(v); err != nil {
			return err
		}
		em.nodes[i] = n
	}
	if len(batch) > 0 {
		var seq yaml.Node
		if err := seq.Encode(batch); err != nil {
			return err
		}
		if seq.Kind != yaml.SequenceNode || len(seq.Content) != len(batch) {
			return fmt.Errorf("internal error: %d scalars encoded into %d nodes", len(batch), len(seq.Content))
		}
		j := 0
		for i, n := range em.nodes {
			if n == nil {
				em.nodes[i] = seq.Content[j]
				j++
			}
		}
	}
	em.scalars = nil
	return nil
}

func (em *emitter) nextScalar() *yaml.Node {
	n := em.nodes[0]
	em.nodes = em.nodes[1:]
	return n
}

// addComments joins comments ("#" each) onto one of a node's comment
// fields: before what is there for a head comment, after it otherwise. It
// returns nil, the emptied list of pending comments.
func addComments(field *string, comments []string, before bool) []string {
	if len(comments) == 0 {
		return nil
	}
	c := "#" + strings.Join(comments, "\n#")
	switch {
	case *field == "":
		*field = c
	case before:
		*field = c + "\n" + *field
	default:
		*field += "\n" + c
	}
	return nil
}

func addCommentsHead(node *yaml.Node, comments []string) []string {
	return addComments(&node.HeadComment, comments, true)
}

func addCommentsFoot(node *yaml.Node, comments []string) []string {
	return addComments(&node.FootComment, comments, false)
}

func addCommentsLine(node *yaml.Node, comments []string) []string {
	return addComments(&node.LineComment, comments, false)
}

func (em *emitter) treeValueToNode(in any) *yaml.Node {
	switch in := in.(type) {
	case treeBranch:
		mapping := &yaml.Node{Kind: yaml.MappingNode}
		em.appendTreeBranch(in, mapping)
		return mapping
	case []any:
		sequence := &yaml.Node{Kind: yaml.SequenceNode}
		em.appendSequence(in, sequence)
		return sequence
	default:
		return em.nextScalar()
	}
}

func (em *emitter) appendSequence(in []any, sequence *yaml.Node) {
	var headComments, inlineComments []string
	beginning := true
	for _, item := range in {
		if c, ok := item.(comment); ok {
			if c.Inline {
				inlineComments = append(inlineComments, c.Value)
			} else {
				headComments = append(headComments, c.Value)
			}
			continue
		}
		if beginning {
			headComments = addCommentsHead(sequence, headComments)
			beginning = false
		}
		itemNode := em.treeValueToNode(item)
		headComments = addCommentsHead(itemNode, headComments)
		inlineComments = addCommentsLine(itemNode, inlineComments)
		sequence.Content = append(sequence.Content, itemNode)
	}
	headComments = append(headComments, inlineComments...)
	if len(headComments) > 0 {
		if beginning {
			addCommentsHead(sequence, headComments)
		} else {
			addCommentsFoot(sequence.Content[len(sequence.Content)-1], headComments)
		}
	}
}

func (em *emitter) appendTreeBranch(branch treeBranch, mapping *yaml.Node) {
	var headComments, inlineComments []string
	beginning := true
	for _, item := range branch {
		if c, ok := item.Key.(comment); ok {
			if c.Inline {
				inlineComments = append(inlineComments, c.Value)
			} else {
				headComments = append(headComments, c.Value)
			}
			continue
		}
		if beginning {
			headComments = addCommentsHead(mapping, headComments)
			beginning = false
		}
		keyNode := em.nextScalar()
		headComments = addCommentsHead(keyNode, headComments)
		valueNode := em.treeValueToNode(item.Value)
		inlineComments = addCommentsLine(valueNode, inlineComments)
		mapping.Content = append(mapping.Content, keyNode, valueNode)
	}
	headComments = append(headComments, inlineComments...)
	if len(headComments) > 0 {
		if beginning {
			addCommentsHead(mapping, headComments)
		} else {
			addCommentsFoot(mapping.Content[len(mapping.Content)-2], headComments)
		}
	}
}

// yamlIndent is the indentation of every file hl writes (the library's
// default is 4; hl has always written 2).
const yamlIndent = 2

// emitPlain renders trees as a YAML stream, one document per branch.
func emitPlain(branches []treeBranch) ([]byte, error) {
	em := &emitter{}
	for _, b := range branches {
		em.collectBranch(b)
	}
	if err := em.encodeScalars(); err != nil {
		return nil, fmt.Errorf("Error marshaling to YAML: %s", err)
	}
	var buf bytes.Buffer
	e := yaml.NewEncoder(&buf)
	e.SetIndent(yamlIndent)
	for _, b := range branches {
		mapping := &yaml.Node{Kind: yaml.MappingNode}
		em.appendTreeBranch(b, mapping)
		doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{mapping}}
		if err := e.Encode(doc); err != nil {
			return nil, fmt.Errorf("Error marshaling to YAML: %s", err)
		}
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ---- comparison (sops.go equals) ----

func treeEqual(a, b any) bool {
	switch a := a.(type) {
	case treeBranch:
		b, ok := b.(treeBranch)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !treeEqual(a[i].Key, b[i].Key) || !treeEqual(a[i].Value, b[i].Value) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !treeEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case comment:
		b, ok := b.(comment)
		return ok && a.Value == b.Value
	case []byte:
		// The library compares with == and would panic here.
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	default:
		if _, ok := b.([]byte); ok {
			return false
		}
		return a == b
	}
}

// cloneValue deep-copies the containers of a tree (scalars are values).
func cloneValue(v any) any {
	switch v := v.(type) {
	case treeBranch:
		out := make(treeBranch, len(v))
		for i, item := range v {
			out[i] = treeItem{Key: item.Key, Value: cloneValue(item.Value)}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = cloneValue(item)
		}
		return out
	default:
		return v
	}
}
