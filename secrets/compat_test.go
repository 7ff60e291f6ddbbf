package secrets

// Compatibility of the in-package sops implementation with the real
// library (github.com/getsops/sops/v3), which only test files import.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	goyaml "go.yaml.in/yaml/v3"
)

type yaml3Node = goyaml.Node

func libStore(indent int) *sopsyaml.Store {
	return sopsyaml.NewStore(&config.YAMLStoreConfig{Indent: indent})
}

// libEncrypt encrypts plain with the library (what this package did before
// it implemented the format itself), with the encryption rules of md.
func libEncrypt(plain []byte, recipients []string, md sops.Metadata, indent int) ([]byte, error) {
	store := libStore(indent)
	branches, err := store.LoadPlainFile(plain)
	if err != nil {
		return nil, err
	}
	// The checks Encrypt made before handing the tree to the library.
	if len(branches) == 0 {
		return nil, errors.New("empty document")
	}
	for _, b := range branches {
		if store.HasSopsTopLevelKey(b) {
			return nil, ErrAlreadyEncrypted
		}
	}
	var group sops.KeyGroup
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, err
	}
	for _, r := range recipients {
		k, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			return nil, err
		}
		if err := k.Encrypt(dataKey); err != nil {
			return nil, err
		}
		group = append(group, k)
	}
	md.KeyGroups = []sops.KeyGroup{group}
	md.Version = "3.13.3"
	tree := sops.Tree{Branches: branches, Metadata: md}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		return nil, err
	}
	tree.Metadata.LastModified = time.Now().UTC().Truncate(time.Second)
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, err
	}
	return store.EmitEncryptedFile(tree)
}

// libDecryptTree decrypts with the library, the identities handed to its
// age key source (as the sops key service does with SOPS_AGE_KEY_FILE),
// and verifies the MAC.
func libDecryptTree(cipherYAML []byte, ids []age.Identity) (sops.Tree, error) {
	tree, err := libStore(2).LoadEncryptedFile(cipherYAML)
	if err != nil {
		return sops.Tree{}, err
	}
	var dataKey []byte
	for _, k := range tree.Metadata.KeyGroups[0] {
		if ak, ok := k.(*sopsage.MasterKey); ok {
			sopsage.ParsedIdentities(ids).ApplyToMasterKey(ak)
			if dataKey, err = ak.Decrypt(); err == nil {
				break
			}
		}
	}
	if dataKey == nil {
		return sops.Tree{}, fmt.Errorf("library: no identity: %v", err)
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(dataKey, cipher)
	if err != nil {
		return sops.Tree{}, err
	}
	stored, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return sops.Tree{}, err
	}
	if stored != mac {
		return sops.Tree{}, sops.MacMismatch
	}
	return tree, nil
}

func libDecrypt(cipherYAML []byte, ids []age.Identity) ([]byte, error) {
	tree, err := libDecryptTree(cipherYAML, ids)
	if err != nil {
		return nil, err
	}
	return libStore(2).EmitPlainFile(tree.Branches)
}

// libPlainEqual is PlainEqual as the library's tree comparison says.
func libPlainEqual(cipherYAML, plain []byte, ids []age.Identity) (bool, error) {
	tree, err := libDecryptTree(cipherYAML, ids)
	if err != nil {
		return false, err
	}
	branches, err := libStore(2).LoadPlainFile(plain)
	if err != nil {
		return false, err
	}
	if len(branches) != len(tree.Branches) {
		return false, nil
	}
	for i := range branches {
		if !tree.Branches[i].Equals(branches[i]) {
			return false, nil
		}
	}
	return true, nil
}

// libPlainTextEqual compares two plaintexts as the library's trees.
func libPlainTextEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	x, err := libStore(2).LoadPlainFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := libStore(2).LoadPlainFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !x[i].Equals(y[i]) {
			return false
		}
	}
	return true
}

// compatDocs are plaintexts exercising the format: every YAML scalar type
// and style, comments everywhere sops keeps them, anchors, multiple
// documents, and the encrypted and cleartext parts of a Secret.
func compatDocs(t testing.TB) map[string][]byte {
	t.Helper()
	cli, err := os.ReadFile("testdata/sops-cli-3.13.3.plain.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bench, _ := benchSecret(t)
	return map[string][]byte{
		"rendered":   renderTest(t),
		"bench":      bench,
		"cli-plain":  cli,
		"tricky":     []byte(trickyDoc),
		"multi-doc":  []byte(multiDoc),
		"comments":   []byte(commentDoc),
		"data-only":  []byte("apiVersion: v1\nkind: Secret\ndata:\n  a: aGVsbG8=\n"),
		"no-secrets": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
	}
}

var trickyDoc = `# head comment of the document
apiVersion: v1
kind: Secret
metadata:
  name: tricky # inline
  annotations:
    date: "2026-01-01"
    plain-date: 2026-01-02
    yes: "yes"
    num-string: "0x1F"
    base60: "1:20"
    octal-string: "0o17"
    empty: ""
    null-value: null
    tilde: ~
    "quoted key": v
    "123": numeric key as string
    long: ` + strings.Repeat("word ", 40) + `
  labels:
    a: b
data:
  b64: aGVsbG8=
stringData:
  # a comment before the first key
  password: "p@ss: word # not a comment"
  multi: |
    line one
    line two
  folded: >
    folded text
    continues
  keep: |+
    keep

  leading-space: "  x"
  trailing-space: "x  "
  unicode: "héllo wörld ✓ 🎉"
  empty: ""
  int: 42
  negative: -7
  hex: 0x1F
  float: 1.5
  float-int: 1.0
  exp: 1e3
  bool: true
  yes-bool: yes
  true-string: "true"
  null-string: "null"
  nul: null
  list:
    - one
    # comment in list
    - 2
    - 3.5
    - false
    - "" # inline in list
    - nested:
        k: v
  nested:
    deep:
      x: "1" # trailing comment
  emptymap: {}
  emptylist: []
  flow: {a: 1, b: [x, y]}
  long: ` + strings.Repeat("0123456789", 30) + `
  tab: "a\tb"
  quote: "it's"
  dq: 'say "hi"'
  colon: "a: b"
  dash: "- x"
  star: "*x"
  bang: "!x"
  percent: "%x"
  at: "@x"
  backtick: "` + "`" + `x"
  anchors: &anc
    a: 1
  alias: *anc
  timestamp: !!timestamp 2001-12-14T21:59:43.10-05:00
  binary: !!binary aGVsbG8=
  explicit-str: !!str 42
  key_unencrypted: still in data
  api_secret: s
  sops-like: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]
type: Opaque
# foot comment
`

var multiDoc = `apiVersion: v1
kind: Secret
metadata:
  name: a
stringData:
  x: "1"
---
# second
apiVersion: v1
kind: Secret
metadata:
  name: b
stringData:
  y: "2"
  z: 3
`

var commentDoc = `# sops:enc
apiVersion: v1
kind: Secret
metadata:
  # sops:noenc
  name: c
stringData:
  a: b # inline in encrypted part
  # sops:enc
  c: d
  # foot in encrypted part
`

// compatRules are sets of encryption rules a sops file can carry.
var compatRules = map[string]sops.Metadata{
	"encrypted_regex":           {EncryptedRegex: EncryptedRegex},
	"mac_only_encrypted":        {EncryptedRegex: EncryptedRegex, MACOnlyEncrypted: true},
	"unencrypted_suffix":        {UnencryptedSuffix: "_unencrypted"},
	"encrypted_suffix":          {EncryptedSuffix: "_secret"},
	"unencrypted_regex":         {UnencryptedRegex: "^(apiVersion|kind|metadata|type)$"},
	"encrypted_comment_regex":   {EncryptedCommentRegex: "sops:enc"},
	"unencrypted_comment_regex": {UnencryptedCommentRegex: "sops:noenc"},
}

// (a) Our Encrypt, decrypted by the library, gives what the library gives
// for its own encryption of the same plaintext; our Decrypt gives the same
// bytes; and our ciphertext has the library's layout.
func TestCompatOurEncryptLibraryDecrypts(t *testing.T) {
	ids, rcpt := testKey(t)
	_, other := otherKey(t, 61)
	rcpts := []string{rcpt, other}
	for name, plain := range compatDocs(t) {
		t.Run(name, func(t *testing.T) {
			libCipher, err := libEncrypt(plain, rcpts, sops.Metadata{EncryptedRegex: EncryptedRegex}, 2)
			if err != nil {
				t.Fatal(err)
			}
			want, err := libDecrypt(libCipher, ids)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := Encrypt(plain, rcpts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := libDecrypt(ours, ids)
			if err != nil {
				t.Fatalf("library cannot decrypt our file: %v\n%s", err, ours)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("library decryption of our file:\n%s\nwant:\n%s", got, want)
			}
			dec, err := Decrypt(ours, ids...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dec, want) {
				t.Errorf("our decryption of our file:\n%s\nwant:\n%s", dec, want)
			}
			if a, b := normalizeCipher(ours), normalizeCipher(libCipher); a != b {
				t.Errorf("our ciphertext layout differs from the library's:\n%s\nlibrary:\n%s", a, b)
			}
			libEq, libErr := libPlainEqual(ours, plain, ids)
			eq, err := PlainEqual(ours, plain, ids...)
			if eq != libEq || (err == nil) != (libErr == nil) {
				t.Errorf("PlainEqual = %v, %v; library says %v, %v", eq, err, libEq, libErr)
			}
			if eq2, err := PlainTextEqual(dec, plain); eq2 != libPlainTextEqual(t, dec, plain) || err != nil {
				t.Errorf("PlainTextEqual = %v, %v; library says %v", eq2, err, !eq2)
			}
		})
	}
}

var (
	encValueText = regexp.MustCompile(`ENC\[AES256_GCM,data:[^,]*,iv:[^,]*,tag:[^,]*,type:[a-z]+\]`)
	ageArmor     = regexp.MustCompile(`-----BEGIN AGE ENCRYPTED FILE-----[\s\S]*?-----END AGE ENCRYPTED FILE-----`)
	lastModLine  = regexp.MustCompile(`lastmodified: "[^"]*"`)
)

// normalizeCipher blanks what is random in a sops file.
func normalizeCipher(b []byte) string {
	s := encValueText.ReplaceAllStringFunc(string(b), func(v string) string {
		return v[strings.LastIndex(v, ",type:"):]
	})
	s = ageArmor.ReplaceAllString(s, "AGE")
	return lastModLine.ReplaceAllString(s, "lastmodified: X")
}

// libDecryptLikeCLI is decrypt.DataWithFormat (the sops CLI's and KSOPS'
// decryption) for YAML, without importing the decrypt package, which would
// add sops' CLI module dependencies to go.mod: the store with the default
// configuration, the data key from the local key service (identities from
// the environment), the values, the MAC.
func libDecryptLikeCLI(data []byte) ([]byte, error) {
	store := sopsyaml.NewStore(&config.NewStoresConfig().YAML)
	tree, err := store.LoadEncryptedFile(data)
	if err != nil {
		return nil, err
	}
	key, err := tree.Metadata.GetDataKey()
	if err != nil {
		return nil, err
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		return nil, err
	}
	originalMac, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("Failed to decrypt original mac: %w", err)
	}
	if originalMac != mac {
		return nil, fmt.Errorf("Failed to verify data integrity. expected mac %q, got %q", originalMac, mac)
	}
	return store.EmitPlainFile(tree.Branches)
}

// The sops CLI's decryption path, with the identity from
// SOPS_AGE_KEY_FILE as sops, KSOPS and helm-secrets get it, reads our
// files.
func TestCompatCLIPathReadsOurFiles(t *testing.T) {
	ids, rcpt := testKey(t)
	keyFile, err := filepath.Abs(testKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvAgeKeyFile, keyFile)
	t.Setenv(EnvAgeKey, "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	for name, plain := range compatDocs(t) {
		t.Run(name, func(t *testing.T) {
			ours, err := Encrypt(plain, []string{rcpt})
			if err != nil {
				t.Fatal(err)
			}
			got, err := libDecryptLikeCLI(ours)
			if err != nil {
				t.Fatalf("sops decrypt: %v", err)
			}
			// The CLI writes the library's default indentation (4).
			tree, err := libDecryptTree(ours, ids)
			if err != nil {
				t.Fatal(err)
			}
			want, err := libStore(0).EmitPlainFile(tree.Branches)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("sops decrypt:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// (b) Files the library encrypts, under every kind of encryption rule and
// with its default indentation too, decrypt with Decrypt to the library's
// plaintext; Rotate and UpdateKeys keep them readable by the library.
func TestCompatLibraryEncryptWeDecrypt(t *testing.T) {
	ids, rcpt := testKey(t)
	newID, newRcpt := otherKey(t, 62)
	for ruleName, rules := range compatRules {
		for name, plain := range compatDocs(t) {
			for _, indent := range []int{2, 4} {
				t.Run(fmt.Sprintf("%s/%s/indent%d", ruleName, name, indent), func(t *testing.T) {
					libCipher, err := libEncrypt(plain, []string{rcpt}, rules, indent)
					if err != nil {
						t.Fatal(err)
					}
					want, err := libDecrypt(libCipher, ids)
					if err != nil {
						t.Fatal(err)
					}
					got, err := Decrypt(libCipher, ids...)
					if err != nil {
						t.Fatalf("Decrypt: %v\n%s", err, libCipher)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("Decrypt:\n%s\nwant:\n%s", got, want)
					}
					libEq, _ := libPlainEqual(libCipher, plain, ids)
					if eq, err := PlainEqual(libCipher, plain, ids...); err != nil || eq != libEq {
						t.Errorf("PlainEqual = %v, %v; library says %v", eq, err, libEq)
					}

					rot, err := Rotate(libCipher, nil, ids...)
					if err != nil {
						t.Fatal(err)
					}
					if got, err := libDecrypt(rot, ids); err != nil || !bytes.Equal(got, want) {
						t.Errorf("library decryption after Rotate (%v):\n%s\nwant:\n%s", err, got, want)
					}
					if a, b := ruleLines(rot), ruleLines(libCipher); a != b {
						t.Errorf("Rotate changed the encryption rules: %q, was %q", a, b)
					}

					upd, err := UpdateKeys(libCipher, []string{newRcpt}, ids...)
					if err != nil {
						t.Fatal(err)
					}
					if got, err := libDecrypt(upd, []age.Identity{newID}); err != nil || !bytes.Equal(got, want) {
						t.Errorf("library decryption after UpdateKeys (%v):\n%s\nwant:\n%s", err, got, want)
					}
					if _, err := libDecrypt(upd, ids); err == nil {
						t.Error("the removed key still decrypts after UpdateKeys")
					}
					// UpdateKeys only rewrites the sops block (the file
					// was written at our indentation).
					if indent == 2 {
						before, _, _ := strings.Cut(string(libCipher), "\nsops:\n")
						after, _, _ := strings.Cut(string(upd), "\nsops:\n")
						if before != after {
							t.Errorf("UpdateKeys changed the document:\n%s\nwas:\n%s", after, before)
						}
					}
				})
			}
		}
	}
}

var ruleKeys = regexp.MustCompile(`(?m)^\s+(mac_only_encrypted|(un)?encrypted_(suffix|regex|comment_regex)): .*$`)

func ruleLines(b []byte) string {
	rules := ruleKeys.FindAllString(string(b), -1)
	for i := range rules {
		rules[i] = strings.TrimSpace(rules[i])
	}
	return strings.Join(rules, "\n")
}

// The file the sops 3.13.3 CLI wrote decrypts to the bytes the library
// emits for it.
func TestCompatSopsCLIFileBytes(t *testing.T) {
	ids, _ := testKey(t)
	cipher, err := os.ReadFile("testdata/sops-cli-3.13.3.sops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := libDecrypt(cipher, ids)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(cipher, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Decrypt:\n%s\nwant:\n%s", got, want)
	}
	if r, err := Recipients(cipher); err != nil || len(r) != 1 {
		t.Errorf("Recipients = %v, %v", r, err)
	}
}

// (c) Any change to a value, to the order of values or to the MAC fails
// with ErrMACMismatch, for our files and the library's; the library agrees
// that the file is broken. (d) A wrong identity is ErrNoMatchingIdentity.
func TestCompatTampering(t *testing.T) {
	ids, rcpt := testKey(t)
	wrong, _ := otherKey(t, 63)
	plain := []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: t\nstringData:\n  a: alpha\n  b: bravo\n  num: 7\n")
	ours, err := Encrypt(plain, []string{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	libs, err := libEncrypt(plain, []string{rcpt}, sops.Metadata{EncryptedRegex: EncryptedRegex}, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, cipher := range map[string][]byte{"ours": ours, "library": libs} {
		t.Run(name, func(t *testing.T) {
			if _, err := Decrypt(cipher, wrong); !errors.Is(err, ErrNoMatchingIdentity) {
				t.Errorf("wrong identity: %v", err)
			}
			lines := strings.Split(string(cipher), "\n")
			find := func(prefix string) int {
				for i, l := range lines {
					if strings.HasPrefix(l, prefix) {
						return i
					}
				}
				t.Fatalf("no line %q in\n%s", prefix, cipher)
				return -1
			}
			edit := func(f func(l []string)) []byte {
				l := slices.Clone(lines)
				f(l)
				return []byte(strings.Join(l, "\n"))
			}
			flip := func(line string) string {
				// Change one base64 character of the data.
				i := strings.Index(line, "data:") + len("data:")
				c := byte('A')
				if line[i] == 'A' {
					c = 'B'
				}
				return line[:i] + string(c) + line[i+1:]
			}
			a, b, n, mac := find("  a: "), find("  b: "), find("  num: "), find("  mac: ")
			cases := map[string][]byte{
				"value data": edit(func(l []string) { l[a] = flip(l[a]) }),
				"int value":  edit(func(l []string) { l[n] = flip(l[n]) }),
				"value type": edit(func(l []string) { l[a] = strings.Replace(l[a], "type:str", "type:int", 1) }),
				"swapped values": edit(func(l []string) {
					l[a], l[b] = "  a: "+strings.TrimPrefix(l[b], "  b: "), "  b: "+strings.TrimPrefix(l[a], "  a: ")
				}),
				"reordered keys": edit(func(l []string) { l[a], l[b] = l[b], l[a] }),
				"removed key":    edit(func(l []string) { l[b] = "" }),
				"cleartext value": edit(func(l []string) {
					l[a] = "  a: alpha"
				}),
				"mac data":  edit(func(l []string) { l[mac] = flip(l[mac]) }),
				"empty mac": edit(func(l []string) { l[mac] = "  mac: \"\"" }),
				"metadata":  bytes.Replace(cipher, []byte("name: t\n"), []byte("name: u\n"), 1),
			}
			for what, tampered := range cases {
				if bytes.Equal(tampered, cipher) {
					t.Fatalf("%s: edit did not apply", what)
				}
				_, err := Decrypt(tampered, ids...)
				// A changed type is caught by GCM (the type is not
				// authenticated, but "alpha" is no int: a clear error
				// instead of a corrupt value).
				if what == "value type" {
					if err == nil {
						t.Errorf("%s: decrypted", what)
					} else if strings.Contains(err.Error(), "alpha") {
						t.Errorf("%s: the error quotes the decrypted value: %v", what, err)
					}
					continue
				}
				if !errors.Is(err, ErrMACMismatch) {
					t.Errorf("%s: got %v, want ErrMACMismatch", what, err)
				}
				if _, err := libDecrypt(tampered, ids); err == nil {
					t.Errorf("%s: the library accepts the tampered file", what)
				}
			}
		})
	}
}

// Scalars emitted in one batch become the nodes the library's one
// node.Encode call per scalar makes.
func TestEmitScalarsLikeNodeEncode(t *testing.T) {
	values := []any{
		"", " ", "a", "true", "True", "yes", "on", "no", "off", "y", "n", "null", "Null", "~",
		"1", "-1", "1.5", "1e3", ".5", "0x1F", "0o17", "017", "1:20", "1_000", ".inf", ".NaN",
		"2026-01-01", "2026-01-01T00:00:00Z", "- a", ": x", "a: b", "a:b", "#x", "a #b", "a#b",
		"'q'", `"dq"`, "multi\nline", "trailing\n", "\nleading", "  leading", "trailing ",
		"\ttab", "a\tb", "é", "🎉", "\x00", "\xff\xfe", "\u2028", "\r\n", strings.Repeat("long words ", 30),
		strings.Repeat("x", 300), "*a", "&a", "!tag", "%x", "@x", "`x", "{a}", "[a]", "a,b",
		"?", "-", "---", "...", "=", "<<", "|", ">", "a\\b", "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]",
		0, 42, -7, 1 << 40, 1.0, 0.1, 1e300, -0.0, 3.14159, true, false, nil,
		time.Date(2001, 12, 14, 21, 59, 43, 100_000_000, time.FixedZone("", -5*3600)),
		time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), []byte("bytes"),
		comment{Value: "a comment in a value position"},
	}
	em := &emitter{scalars: slices.Clone(values)}
	if err := em.encodeScalars(); err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		var want yaml3Node
		if err := want.Encode(v); err != nil {
			t.Fatal(err)
		}
		if diff := nodeDiff(em.nodes[i], &want); diff != "" {
			t.Errorf("%#v: %s", v, diff)
		}
	}
}

func FuzzEmitScalarString(f *testing.F) {
	for _, s := range []string{"", "a", "true", "1:20", "a\nb", " x", "#", "\xff"} {
		f.Add(s, "key")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		em := &emitter{scalars: []any{a, b}}
		if err := em.encodeScalars(); err != nil {
			t.Skip(err)
		}
		for i, v := range []string{a, b} {
			var want yaml3Node
			if err := want.Encode(v); err != nil {
				t.Skip(err)
			}
			if diff := nodeDiff(em.nodes[i], &want); diff != "" {
				t.Errorf("%q: %s", v, diff)
			}
		}
	})
}

func nodeDiff(got, want *yaml3Node) string {
	if got.Kind != want.Kind || got.Tag != want.Tag || got.Style != want.Style || got.Value != want.Value ||
		got.HeadComment != want.HeadComment || got.LineComment != want.LineComment || got.FootComment != want.FootComment ||
		len(got.Content) != len(want.Content) {
		return fmt.Sprintf("node {%v %q %v %q} want {%v %q %v %q}", got.Kind, got.Tag, got.Style, got.Value, want.Kind, want.Tag, want.Style, want.Value)
	}
	for i := range got.Content {
		if d := nodeDiff(got.Content[i], want.Content[i]); d != "" {
			return d
		}
	}
	return ""
}

// Types and values the library cannot walk fail in both implementations.
func TestCompatErrorsAgree(t *testing.T) {
	_, rcpt := testKey(t)
	for _, doc := range []string{
		"stringData:\n  big: 18446744073709551615\n",
		"metadata:\n  big: 18446744073709551615\n",
		"- a\n- b\n",
		"just a scalar\n",
		"a: 1\na: 2\n",
		"? [x, y]\n: complex key\n",
		"stringData:\n  1: int key\n",
		"sops: {}\n",
		"   \n",
		"# only a comment\n",
		"---\n",
		"---\na: 1\n",
		"a: 1\n---\n",
		"a: 1\n---\n- x\n",
		"a: 1\n---\nsops: x\n",
		"",
	} {
		_, err := Encrypt([]byte(doc), []string{rcpt})
		_, libErr := libEncrypt([]byte(doc), []string{rcpt}, sops.Metadata{EncryptedRegex: EncryptedRegex}, 2)
		if (err == nil) != (libErr == nil) {
			t.Errorf("%q: Encrypt error %v, library error %v", doc, err, libErr)
		}
	}
}

// BenchmarkLibraryEncrypt and BenchmarkLibraryDecrypt run the library's
// code path this package used before it implemented the format, on
// BenchmarkEncrypt's and BenchmarkDecrypt's Secret, for comparison.
func BenchmarkLibraryEncrypt(b *testing.B) {
	plain, rcpts := benchSecret(b)
	for b.Loop() {
		if _, err := libEncrypt(plain, rcpts, sops.Metadata{EncryptedRegex: EncryptedRegex}, 2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLibraryDecrypt(b *testing.B) {
	plain, rcpts := benchSecret(b)
	ids, _ := testKey(b)
	cipher, err := Encrypt(plain, rcpts)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := libDecrypt(cipher, ids); err != nil {
			b.Fatal(err)
		}
	}
}
