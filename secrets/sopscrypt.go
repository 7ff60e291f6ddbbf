package secrets

// Encryption of tree values and the MAC, ported from
// github.com/getsops/sops/v3 (sops.go: Tree.Encrypt, Tree.Decrypt, walk,
// shouldBeEncrypted, ToBytes) and github.com/getsops/sops/v3/aes
// (cipher.go) at the version in go.mod.
//
// A value is encrypted with AES-256-GCM under the file's 32-byte data key,
// with a random 32-byte IV and, as additional data, the path of its keys
// joined by ":" plus a trailing ":" ("stringData:password:"). It is stored
// as ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<str|int|float|
// bool|time|bytes|comment>], standard base64. Empty strings stay empty.
// The MAC is the upper-case hex SHA-512 of the plaintext bytes of every
// value the walk visits (encrypted or not, comments excepted, nulls
// skipped), in walk order over all documents, or only of the encrypted
// ones after a fixed prefix with mac_only_encrypted. It is stored
// encrypted like a string value, with the lastmodified timestamp (RFC
// 3339) as additional data.

import (
	cryptoaes "crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ivSize is the GCM nonce size sops uses (not GCM's standard 12 bytes).
const ivSize = 32

// defaultUnencryptedSuffix is the rule sops applies to files whose
// metadata has no encryption rule at all.
const defaultUnencryptedSuffix = "_unencrypted"

// macOnlyEncryptedInit starts the MAC of mac_only_encrypted files
// (sops.MACOnlyEncryptedInitialization, sha256("sops")).
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// encValueRe is the library's parser of encrypted values; its greedy groups
// and missing end anchor are part of the format as the library reads it.
var encValueRe = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// errValueIntegrity marks a value that is not a valid sops ciphertext for
// its place in the file: wrong format, or failing GCM authentication (a
// modified value, or one moved to another key).
var errValueIntegrity = errors.New("value fails authentication")

// valueCipher is the AES-GCM cipher of one data key.
type valueCipher struct {
	dataKey []byte
	gcm     cipher.AEAD
}

func newValueCipher(dataKey []byte) (*valueCipher, error) {
	block, err := cryptoaes.NewCipher(dataKey)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, ivSize)
	if err != nil {
		return nil, err
	}
	return &valueCipher{dataKey: dataKey, gcm: gcm}, nil
}

func isEmptyValue(v any) bool {
	switch v := v.(type) {
	case string:
		return v == ""
	case []byte:
		return len(v) == 0
	case comment:
		return v.Value == ""
	default:
		return false
	}
}

// encrypt is aes.Cipher.Encrypt (without the IV stash, which only serves
// sops edit).
func (c *valueCipher) encrypt(plaintext any, additionalData string) (string, error) {
	if isEmptyValue(plaintext) {
		return "", nil
	}
	var plain []byte
	var typ string
	switch v := plaintext.(type) {
	case string:
		typ, plain = "str", []byte(v)
	case int:
		typ, plain = "int", []byte(strconv.Itoa(v))
	case float64:
		typ, plain = "float", []byte(strconv.FormatFloat(v, 'f', -1, 64))
	case bool:
		typ, plain = "bool", []byte("False")
		if v {
			plain = []byte("True")
		}
	case time.Time:
		typ = "time"
		var err error
		if plain, err = v.MarshalText(); err != nil {
			return "", fmt.Errorf("Error marshaling timestamp %q: %w", v, err)
		}
	case comment:
		typ, plain = "comment", []byte(v.Value)
	default:
		return "", fmt.Errorf("Value to encrypt has unsupported type %T", v)
	}
	iv := make([]byte, ivSize)
	if _, err := rand.Read(iv); err != nil {
		return "", fmt.Errorf("Could not generate random bytes for IV: %s", err)
	}
	out := c.gcm.Seal(nil, iv, plain, []byte(additionalData))
	tagAt := len(out) - c.gcm.Overhead()
	return "ENC[AES256_GCM,data:" + base64.StdEncoding.EncodeToString(out[:tagAt]) +
		",iv:" + base64.StdEncoding.EncodeToString(iv) +
		",tag:" + base64.StdEncoding.EncodeToString(out[tagAt:]) +
		",type:" + typ + "]", nil
}

// decrypt is aes.Cipher.Decrypt. Format and authentication failures wrap
// errValueIntegrity.
func (c *valueCipher) decrypt(ciphertext, additionalData string) (any, error) {
	if ciphertext == "" {
		return "", nil
	}
	m := encValueRe.FindStringSubmatch(ciphertext)
	if m == nil {
		return nil, fmt.Errorf("%w: not in sops' ENC[AES256_GCM,...] format", errValueIntegrity)
	}
	var parts [3][]byte
	for i, name := range []string{"data", "iv", "tag"} {
		b, err := base64.StdEncoding.DecodeString(m[i+1])
		if err != nil {
			return nil, fmt.Errorf("%w: base64-decoding %s: %v", errValueIntegrity, name, err)
		}
		parts[i] = b
	}
	data, iv, tag := parts[0], parts[1], parts[2]
	gcm := c.gcm
	if len(iv) != ivSize {
		// The library accepts any IV length.
		block, err := cryptoaes.NewCipher(c.dataKey)
		if err != nil {
			return nil, err
		}
		if gcm, err = cipher.NewGCMWithNonceSize(block, len(iv)); err != nil {
			return nil, fmt.Errorf("%w: %v", errValueIntegrity, err)
		}
	}
	plain, err := gcm.Open(nil, iv, append(data, tag...), []byte(additionalData))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errValueIntegrity, err)
	}
	s := string(plain)
	// A value that does not parse as its (unauthenticated) type tag says:
	// the error must not quote it, as strconv's errors would.
	typeErr := func(typ string) error {
		return fmt.Errorf("%w: the decrypted value is not a valid %s (value withheld)", errValueIntegrity, typ)
	}
	switch typ := m[4]; typ {
	case "str":
		return s, nil
	case "int":
		v, err := strconv.Atoi(s)
		if err != nil {
			return nil, typeErr(typ)
		}
		return v, nil
	case "float":
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, typeErr(typ)
		}
		return v, nil
	case "bytes":
		return plain, nil
	case "bool":
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, typeErr(typ)
		}
		return v, nil
	case "time":
		var t time.Time
		if err := t.UnmarshalText(plain); err != nil {
			return nil, typeErr(typ)
		}
		return t, nil
	case "comment":
		return comment{Value: s}, nil
	default:
		return nil, fmt.Errorf("Unknown datatype: %s", typ)
	}
}

// valueToBytes is sops.ToBytes: what the MAC hashes for a value.
func valueToBytes(in any) ([]byte, error) {
	switch in := in.(type) {
	case string:
		return []byte(in), nil
	case int:
		return []byte(strconv.Itoa(in)), nil
	case float64:
		return []byte(strconv.FormatFloat(in, 'f', -1, 64)), nil
	case bool:
		if in {
			return []byte("True"), nil
		}
		return []byte("False"), nil
	case []byte:
		return in, nil
	case time.Time:
		return in.MarshalText()
	case comment:
		return valueToBytes(in.Value)
	default:
		return nil, fmt.Errorf("Could not convert unknown type %T to bytes", in)
	}
}

// ---- walk (sops.go walkBranch, walkSlice, walkValue) ----

type leafFunc func(in any, path []string, commentsStack [][]string) (any, error)

func walkValue(in any, path []string, commentsStack [][]string, onLeaves leafFunc) (any, error) {
	switch in := in.(type) {
	case string, int, bool, float64, time.Time, comment:
		return onLeaves(in, path, commentsStack)
	case []byte:
		return onLeaves(string(in), path, commentsStack)
	case treeBranch:
		return walkBranch(in, path, commentsStack, onLeaves)
	case []any:
		return walkSlice(in, path, commentsStack, onLeaves)
	case nil:
		// Nulls are neither encrypted nor part of the MAC.
		return nil, nil
	default:
		return nil, fmt.Errorf("Cannot walk value, unknown type: %T", in)
	}
}

func walkSlice(in []any, path []string, commentsStack [][]string, onLeaves leafFunc) ([]any, error) {
	commentsStack = append(commentsStack, []string{})
	for i, v := range in {
		c, vIsComment := v.(comment)
		if vIsComment {
			commentsStack[len(commentsStack)-1] = append(commentsStack[len(commentsStack)-1], c.Value)
		}
		newV, err := walkValue(v, path, commentsStack, onLeaves)
		if err != nil {
			return nil, err
		}
		in[i] = newV
		if !vIsComment {
			commentsStack[len(commentsStack)-1] = []string{}
		}
	}
	return in, nil
}

func walkBranch(in treeBranch, path []string, commentsStack [][]string, onLeaves leafFunc) (treeBranch, error) {
	commentsStack = append(commentsStack, []string{})
	for i, item := range in {
		if c, ok := item.Key.(comment); ok {
			commentsStack[len(commentsStack)-1] = append(commentsStack[len(commentsStack)-1], c.Value)
			enc, err := walkValue(item.Key, path, commentsStack, onLeaves)
			if err != nil {
				return nil, err
			}
			switch enc := enc.(type) {
			case comment:
				in[i].Key = enc
			case string:
				in[i].Key = comment{Value: enc, Inline: c.Inline}
			default:
				return nil, fmt.Errorf("walkValue of Comment should be either Comment or string, was %T", enc)
			}
			continue
		}
		c, valueIsComment := item.Value.(comment)
		if valueIsComment {
			commentsStack[len(commentsStack)-1] = append(commentsStack[len(commentsStack)-1], c.Value)
		}
		key, ok := item.Key.(string)
		if !ok {
			return nil, fmt.Errorf("Tree contains a non-string key (type %T): %v. Only string keys are supported", item.Key, item.Key)
		}
		newV, err := walkValue(item.Value, append(path, key), commentsStack, onLeaves)
		if err != nil {
			return nil, err
		}
		in[i].Value = newV
		if !valueIsComment {
			commentsStack[len(commentsStack)-1] = []string{}
		}
	}
	return in, nil
}

// ---- encryption rules (sops.go shouldBeEncrypted) ----

// cryptRules are the metadata's encryption rules, with the regular
// expressions compiled once per file instead of once per value. A rule
// regexp that does not compile matches nothing, as in the library (which
// ignores regexp.Match's error).
type cryptRules struct {
	unencryptedSuffix, encryptedSuffix          string
	unencryptedRegex, encryptedRegex            *regexp.Regexp
	unencryptedCommentRegex, encryptedCommentRe *regexp.Regexp
	hasUnencryptedRegex, hasEncryptedRegex      bool
	hasUnencryptedComment, hasEncryptedComment  bool
}

var encryptedRegexRe = regexp.MustCompile(EncryptedRegex)

func compileRule(expr string) *regexp.Regexp {
	if expr == EncryptedRegex {
		return encryptedRegexRe
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil
	}
	return re
}

func matches(re *regexp.Regexp, s string) bool {
	return re != nil && re.MatchString(s)
}

func (md *metadata) rules() *cryptRules {
	r := &cryptRules{
		unencryptedSuffix:     md.unencryptedSuffix,
		encryptedSuffix:       md.encryptedSuffix,
		hasUnencryptedRegex:   md.unencryptedRegex != "",
		hasEncryptedRegex:     md.encryptedRegex != "",
		hasUnencryptedComment: md.unencryptedCommentRegex != "",
		hasEncryptedComment:   md.encryptedCommentRegex != "",
	}
	if r.hasUnencryptedRegex {
		r.unencryptedRegex = compileRule(md.unencryptedRegex)
	}
	if r.hasEncryptedRegex {
		r.encryptedRegex = compileRule(md.encryptedRegex)
	}
	if r.hasUnencryptedComment {
		r.unencryptedCommentRegex = compileRule(md.unencryptedCommentRegex)
	}
	if r.hasEncryptedComment {
		r.encryptedCommentRe = compileRule(md.encryptedCommentRegex)
	}
	return r
}

func (r *cryptRules) shouldBeEncrypted(path []string, commentsStack [][]string, isComment bool) bool {
	encrypted := true
	if r.unencryptedSuffix != "" {
		for _, v := range path {
			if strings.HasSuffix(v, r.unencryptedSuffix) {
				encrypted = false
				break
			}
		}
	}
	if r.encryptedSuffix != "" {
		encrypted = false
		for _, v := range path {
			if strings.HasSuffix(v, r.encryptedSuffix) {
				encrypted = true
				break
			}
		}
	}
	if r.hasUnencryptedRegex {
		for _, p := range path {
			if matches(r.unencryptedRegex, p) {
				encrypted = false
				break
			}
		}
	}
	if r.hasEncryptedRegex {
		encrypted = false
		for _, p := range path {
			if matches(r.encryptedRegex, p) {
				encrypted = true
				break
			}
		}
	}
	if r.hasUnencryptedComment {
	unencryptedComments:
		for _, cs := range commentsStack {
			for _, c := range cs {
				if matches(r.unencryptedCommentRegex, c) {
					encrypted = false
					break unencryptedComments
				}
			}
		}
	}
	if r.hasEncryptedComment {
		last := len(commentsStack) - 1
		lastLen := len(commentsStack[last])
		encrypted = false
	encryptedComments:
		for i, cs := range commentsStack {
			for j, c := range cs {
				// The comment line that matches the regex is itself
				// left in the clear.
				if isComment && i == last && j == lastLen-1 {
					continue
				}
				if matches(r.encryptedCommentRe, c) {
					encrypted = true
					break encryptedComments
				}
			}
		}
	}
	return encrypted
}

func newMACHash(md *metadata) hash.Hash {
	h := sha512.New()
	if md.macOnlyEncrypted {
		h.Write(macOnlyEncryptedInit)
	}
	return h
}

func macString(h hash.Hash) string {
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// encryptBranches encrypts the values the rules select, in place, and
// returns the MAC of the plaintext (sops Tree.Encrypt).
func encryptBranches(branches []treeBranch, md *metadata, c *valueCipher) (string, error) {
	rules := md.rules()
	h := newMACHash(md)
	onLeaves := func(in any, path []string, commentsStack [][]string) (any, error) {
		_, isComment := in.(comment)
		encrypted := rules.shouldBeEncrypted(path, commentsStack, isComment)
		if (!md.macOnlyEncrypted || encrypted) && !isComment {
			b, err := valueToBytes(in)
			if err != nil {
				return nil, fmt.Errorf("Could not convert a %T value to bytes: %s", in, err)
			}
			h.Write(b)
		}
		if !encrypted {
			return in, nil
		}
		out, err := c.encrypt(in, strings.Join(path, ":")+":")
		if err != nil {
			return nil, fmt.Errorf("Could not encrypt value: %s", err)
		}
		if isComment && matches(rules.unencryptedCommentRegex, out) {
			return nil, fmt.Errorf("Encrypted comment %q matches UnencryptedCommentRegex! Make sure that UnencryptedCommentRegex cannot match an encrypted comment.", out)
		}
		return out, nil
	}
	for _, b := range branches {
		if _, err := walkBranch(b, make([]string, 0), make([][]string, 0), onLeaves); err != nil {
			return "", fmt.Errorf("Error walking tree: %w", err)
		}
	}
	return macString(h), nil
}

// decryptBranches decrypts the values the rules select, in place, and
// returns the MAC of the plaintext (sops Tree.Decrypt). A value that does
// not authenticate yields an error wrapping errValueIntegrity; a comment
// that does not is kept as it is, as the library does for comments written
// by old sops versions.
func decryptBranches(branches []treeBranch, md *metadata, c *valueCipher) (string, error) {
	rules := md.rules()
	h := newMACHash(md)
	onLeaves := func(in any, path []string, commentsStack [][]string) (any, error) {
		cm, isComment := in.(comment)
		encrypted := rules.shouldBeEncrypted(path, commentsStack, isComment)
		v := in
		if encrypted {
			ad := strings.Join(path, ":") + ":"
			switch s := in.(type) {
			case comment:
				dec, err := c.decrypt(cm.Value, ad)
				if err == nil {
					v = dec
				}
			case string:
				dec, err := c.decrypt(s, ad)
				if err != nil {
					return nil, fmt.Errorf("Could not decrypt value at %s: %w", strings.Join(path, "."), err)
				}
				v = dec
			default:
				return nil, fmt.Errorf("Expected encrypted value as string at %s, but got %T", strings.Join(path, "."), in)
			}
		}
		if !md.macOnlyEncrypted || encrypted {
			// A value can decrypt to a comment (comments in sequences
			// are stored as values), so test the result, not the input.
			if _, resultIsComment := v.(comment); !resultIsComment {
				b, err := valueToBytes(v)
				if err != nil {
					return nil, fmt.Errorf("Could not convert a %T value to bytes: %s", in, err)
				}
				h.Write(b)
			}
		}
		return v, nil
	}
	for _, b := range branches {
		if _, err := walkBranch(b, make([]string, 0), make([][]string, 0), onLeaves); err != nil {
			return "", fmt.Errorf("Error walking tree: %w", err)
		}
	}
	return macString(h), nil
}
