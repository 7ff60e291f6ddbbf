package secrets

// The sops metadata block, ported from github.com/getsops/sops/v3/stores
// (stores.go, metadata.go) at the version in go.mod, for the YAML store
// (metadata nested under a top-level "sops" key, not flattened).
//
// Reading follows the library's mapstructure decoding (weakly typed, keys
// matched case-insensitively, unknown keys ignored). Writing produces what
// the library writes for a file with one key group of age keys: the keys of
// the block in lexical order, empty optional fields left out:
//
//	sops:
//	  age:
//	    - enc: |
//	        -----BEGIN AGE ENCRYPTED FILE-----
//	        ...
//	      recipient: age1...
//	  encrypted_regex: ^(data|stringData)$
//	  lastmodified: "2026-01-02T03:04:05Z"
//	  mac: ENC[AES256_GCM,data:...,type:str]
//	  version: 3.13.3

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ageKey is one age recipient of a key group and the data key wrapped for
// it (an armored age file).
type ageKey struct {
	recipient string
	enc       string
}

// keyGroup is a sops key group. hl reads and writes age keys only; the
// other master key types are counted so that a file encrypted for, say,
// PGP and age still decrypts with the age identity.
type keyGroup struct {
	age   []ageKey
	other []string // key types, in file order
}

func (g keyGroup) size() int { return len(g.age) + len(g.other) }

// metadata is sops.Metadata without the key objects.
type metadata struct {
	lastModified            time.Time
	unencryptedSuffix       string
	encryptedSuffix         string
	unencryptedRegex        string
	encryptedRegex          string
	unencryptedCommentRegex string
	encryptedCommentRegex   string
	mac                     string
	macOnlyEncrypted        bool
	version                 string
	shamirThreshold         int
	keyGroups               []keyGroup
}

// otherKeyTypes are the non-age master key lists of the metadata and key
// groups, in the order the library builds a group from them (age last).
var otherKeyTypes = []string{"kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "pgp"}

// extractMetadata removes the "sops" entries from the documents and
// decodes the one of the first document (stores.ExtractMetadata).
func extractMetadata(branches []treeBranch) ([]treeBranch, metadata, error) {
	var mdTree treeBranch
	first := true
	for bi, branch := range branches {
		i := 0
		for i < len(branch) {
			if branch[i].Key != sopsMetadataKey {
				i++
				continue
			}
			if bi == 0 {
				if !first {
					return nil, metadata{}, fmt.Errorf("Found duplicate %v entry", sopsMetadataKey)
				}
				first = false
				tree, ok := branch[i].Value.(treeBranch)
				if !ok {
					return nil, metadata{}, fmt.Errorf("Found %v entry that is not a mapping", sopsMetadataKey)
				}
				mdTree = tree
			}
			branch = append(branch[:i], branch[i+1:]...)
		}
		branches[bi] = branch
	}
	if mdTree == nil {
		return nil, metadata{}, errMetadataNotFound
	}
	md, err := decodeMetadata(mdTree)
	if err != nil {
		return nil, metadata{}, err
	}
	return branches, md, nil
}

// goMap is a decoded mapping: comments dropped, keys strings.
type goMap map[string]any

func toGo(v any) (any, error) {
	switch v := v.(type) {
	case treeBranch:
		m := goMap{}
		for _, item := range v {
			if _, ok := item.Key.(comment); ok {
				continue
			}
			k, ok := item.Key.(string)
			if !ok {
				return nil, fmt.Errorf("Unexpected key type %T", item.Key)
			}
			val, err := toGo(item.Value)
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		return m, nil
	case []any:
		out := make([]any, 0, len(v))
		for _, item := range v {
			if _, ok := item.(comment); ok {
				continue
			}
			val, err := toGo(item)
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	default:
		return v, nil
	}
}

// get looks a field up as mapstructure does: exact name first, then
// case-insensitively.
func (m goMap) get(name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func (m goMap) str(name string) (string, error) {
	v, _ := m.get(name)
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case []byte:
		return string(v), nil
	case time.Time:
		// mapstructure cannot turn a struct into a string.
		return "", fmt.Errorf("'%s' expected type 'string', got unconvertible type 'time.Time'", name)
	default:
		return "", fmt.Errorf("'%s' expected type 'string', got unconvertible type '%T'", name, v)
	}
}

func (m goMap) integer(name string) (int, error) {
	v, _ := m.get(name)
	switch v := v.(type) {
	case nil:
		return 0, nil
	case int:
		return v, nil
	case int64:
		return int(v), nil
	case uint64:
		return int(v), nil
	case float64:
		return int(v), nil
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case string:
		if v == "" {
			return 0, nil
		}
		i, err := strconv.ParseInt(v, 0, 0)
		if err != nil {
			return 0, fmt.Errorf("cannot parse '%s' as int: %s", name, err)
		}
		return int(i), nil
	default:
		return 0, fmt.Errorf("'%s' expected type 'int', got unconvertible type '%T'", name, v)
	}
}

func (m goMap) boolean(name string) (bool, error) {
	v, _ := m.get(name)
	switch v := v.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case int:
		return v != 0, nil
	case int64:
		return v != 0, nil
	case uint64:
		return v != 0, nil
	case float64:
		return v != 0, nil
	case string:
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("cannot parse '%s' as bool: %s", name, err)
		}
		return b, nil
	default:
		return false, fmt.Errorf("'%s' expected type 'bool', got unconvertible type '%T'", name, v)
	}
}

// list returns the maps of a list field; with weakly typed input a single
// map is a list of one, and an empty map or string an empty list.
func (m goMap) list(name string) ([]goMap, error) {
	v, _ := m.get(name)
	var items []any
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []any:
		items = v
	case goMap:
		if len(v) == 0 {
			return nil, nil
		}
		items = []any{v}
	case string:
		if v == "" {
			return nil, nil
		}
		return nil, fmt.Errorf("'%s': source data must be an array or slice, got string", name)
	default:
		return nil, fmt.Errorf("'%s': source data must be an array or slice, got %T", name, v)
	}
	out := make([]goMap, 0, len(items))
	for i, item := range items {
		switch item := item.(type) {
		case goMap:
			out = append(out, item)
		case nil:
			out = append(out, goMap{})
		default:
			return nil, fmt.Errorf("'%s[%d]' expected a map, got '%T'", name, i, item)
		}
	}
	return out, nil
}

// decodeGroup reads the key lists of m (the metadata itself, or one entry
// of key_groups) into a group, in the library's order.
func decodeGroup(m goMap) (keyGroup, error) {
	var g keyGroup
	for _, typ := range otherKeyTypes {
		keys, err := m.list(typ)
		if err != nil {
			return g, err
		}
		for _, k := range keys {
			// The library parses every created_at of these keys.
			created, err := k.str("created_at")
			if err != nil {
				return g, err
			}
			if _, err := time.Parse(time.RFC3339, created); err != nil {
				return g, err
			}
			g.other = append(g.other, typ)
		}
	}
	keys, err := m.list("age")
	if err != nil {
		return g, err
	}
	for _, k := range keys {
		r, err := k.str("recipient")
		if err != nil {
			return g, err
		}
		enc, err := k.str("enc")
		if err != nil {
			return g, err
		}
		g.age = append(g.age, ageKey{recipient: r, enc: enc})
	}
	return g, nil
}

// decodeMetadata is treeBranchToMetadata plus metadata.ToInternal.
func decodeMetadata(tree treeBranch) (metadata, error) {
	v, err := toGo(tree)
	if err != nil {
		return metadata{}, err
	}
	m := v.(goMap)
	var md metadata
	var errs []error
	str := func(name string, dst *string) {
		s, err := m.str(name)
		errs = append(errs, err)
		*dst = s
	}
	var lastModified string
	str("lastmodified", &lastModified)
	str("mac", &md.mac)
	str("unencrypted_suffix", &md.unencryptedSuffix)
	str("encrypted_suffix", &md.encryptedSuffix)
	str("unencrypted_regex", &md.unencryptedRegex)
	str("encrypted_regex", &md.encryptedRegex)
	str("unencrypted_comment_regex", &md.unencryptedCommentRegex)
	str("encrypted_comment_regex", &md.encryptedCommentRegex)
	str("version", &md.version)
	md.macOnlyEncrypted, err = m.boolean("mac_only_encrypted")
	errs = append(errs, err)
	md.shamirThreshold, err = m.integer("shamir_threshold")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return metadata{}, err
	}

	if md.lastModified, err = time.Parse(time.RFC3339, lastModified); err != nil {
		return metadata{}, err
	}
	top, err := decodeGroup(m)
	if err != nil {
		return metadata{}, err
	}
	if top.size() > 0 {
		md.keyGroups = []keyGroup{top}
	} else {
		groups, err := m.list("key_groups")
		if err != nil {
			return metadata{}, err
		}
		if len(groups) == 0 {
			return metadata{}, errors.New("No keys found in file")
		}
		for _, gm := range groups {
			g, err := decodeGroup(gm)
			if err != nil {
				return metadata{}, err
			}
			md.keyGroups = append(md.keyGroups, g)
		}
	}

	rules := 0
	for _, r := range []string{md.unencryptedSuffix, md.encryptedSuffix, md.unencryptedRegex, md.encryptedRegex, md.unencryptedCommentRegex, md.encryptedCommentRegex} {
		if r != "" {
			rules++
		}
	}
	if rules > 1 {
		return metadata{}, errors.New("Cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file")
	}
	if rules == 0 {
		md.unencryptedSuffix = defaultUnencryptedSuffix
	}
	return md, nil
}

// metadataBranch serializes metadata the way stores.SerializeMetadata does
// for a single key group of age keys: mapstructure turns the struct into a
// map (omitempty fields dropped) and the map's keys are sorted.
func metadataBranch(md *metadata) (treeBranch, error) {
	if len(md.keyGroups) != 1 || len(md.keyGroups[0].other) != 0 {
		return nil, errors.New("internal error: hl writes exactly one key group of age keys")
	}
	var out treeBranch
	if keys := md.keyGroups[0].age; len(keys) > 0 {
		list := make([]any, len(keys))
		for i, k := range keys {
			list[i] = treeBranch{{Key: "enc", Value: k.enc}, {Key: "recipient", Value: k.recipient}}
		}
		out = append(out, treeItem{Key: "age", Value: list})
	}
	optional := func(key, v string) {
		if v != "" {
			out = append(out, treeItem{Key: key, Value: v})
		}
	}
	// Lexical key order.
	optional("encrypted_comment_regex", md.encryptedCommentRegex)
	optional("encrypted_regex", md.encryptedRegex)
	optional("encrypted_suffix", md.encryptedSuffix)
	out = append(out,
		treeItem{Key: "lastmodified", Value: md.lastModified.Format(time.RFC3339)},
		treeItem{Key: "mac", Value: md.mac})
	if md.macOnlyEncrypted {
		out = append(out, treeItem{Key: "mac_only_encrypted", Value: true})
	}
	if md.shamirThreshold != 0 {
		out = append(out, treeItem{Key: "shamir_threshold", Value: md.shamirThreshold})
	}
	optional("unencrypted_comment_regex", md.unencryptedCommentRegex)
	optional("unencrypted_regex", md.unencryptedRegex)
	optional("unencrypted_suffix", md.unencryptedSuffix)
	out = append(out, treeItem{Key: "version", Value: md.version})
	return out, nil
}

// withMetadata returns the documents with the metadata appended to each, as
// the library writes it (stores.SerializeMetadata).
func withMetadata(branches []treeBranch, md *metadata) ([]treeBranch, error) {
	mdb, err := metadataBranch(md)
	if err != nil {
		return nil, err
	}
	out := make([]treeBranch, 0, len(branches))
	for _, b := range branches {
		nb := make(treeBranch, 0, len(b)+1)
		for _, item := range b {
			if item.Key == sopsMetadataKey {
				return nil, fmt.Errorf("Found key %q in encrypted data, which is a reserved key used for SOPS metadata", sopsMetadataKey)
			}
			nb = append(nb, item)
		}
		// Each document gets its own copy: emitting consumes nodes per
		// occurrence, and the trees are never shared.
		nb = append(nb, treeItem{Key: sopsMetadataKey, Value: cloneValue(mdb)})
		out = append(out, nb)
	}
	return out, nil
}
