package secrets

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"gopkg.in/yaml.v3"
)

const testKeyPath = "../testdata/age/test-key.txt"

// testKey loads the committed test identity and its recipient.
func testKey(t testing.TB) ([]age.Identity, string) {
	t.Helper()
	ids, err := LoadIdentities(testKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(testKeyPath)
	m := regexpPublicKey(string(data))
	if m == "" {
		t.Fatal("test key file has no '# public key:' line")
	}
	if got := ids[0].(*age.X25519Identity).Recipient().String(); got != m {
		t.Fatalf("test key public key line %s does not match the identity (%s)", m, got)
	}
	return ids, m
}

func regexpPublicKey(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if r, ok := strings.CutPrefix(line, "# public key: "); ok {
			return strings.TrimSpace(r)
		}
	}
	return ""
}

// otherKey is a second, throwaway identity.
func otherKey(t testing.TB, seed byte) (age.Identity, string) {
	t.Helper()
	id, rcpt, err := ageIdentity(seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := age.ParseX25519Identity(id)
	if err != nil {
		t.Fatal(err)
	}
	return parsed, rcpt
}

func renderTest(t testing.TB) []byte {
	t.Helper()
	plain, err := Render(testSpec(), nil, "2026-01-02", seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	ids, rcpt := testKey(t)
	plain := renderTest(t)
	cipher, err := Encrypt(plain, []string{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(cipher, ids...)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ReadSecret(plain)
	have, err := ReadSecret(got)
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(want.Values, have.Values) || !mapsEqual(want.Annotations, have.Annotations) || !mapsEqual(want.Labels, have.Labels) {
		t.Errorf("round trip changed the secret:\n%s\n---\n%s", plain, got)
	}
	// Decrypt output is a fixed point: it equals the plaintext, semantically.
	if eq, err := PlainEqual(cipher, plain, ids...); err != nil || !eq {
		t.Errorf("PlainEqual(own ciphertext, plaintext) = %v, %v", eq, err)
	}
}

func TestCiphertextHidesValuesShowsMetadata(t *testing.T) {
	_, rcpt := testKey(t)
	plain := renderTest(t)
	ex, _ := ReadSecret(plain)
	cipher, err := Encrypt(plain, []string{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ex.Values {
		for _, line := range strings.Split(v, "\n") {
			// Skip PEM armour lines, which are not secret.
			if len(line) < 8 || strings.HasPrefix(line, "-----") {
				continue
			}
			if bytes.Contains(cipher, []byte(line)) {
				t.Errorf("ciphertext contains plaintext of %q: %q", k, line)
			}
		}
	}
	var doc map[string]any
	if err := yaml.Unmarshal(cipher, &doc); err != nil {
		t.Fatal(err)
	}
	md := doc["metadata"].(map[string]any)
	if md["name"] != "gitea-admin" || md["namespace"] != "gitea" {
		t.Errorf("metadata not readable: %v", md)
	}
	ann := md["annotations"].(map[string]any)
	for k, v := range ex.Annotations {
		if ann[k] != v {
			t.Errorf("annotation %s = %v in ciphertext, want %q", k, ann[k], v)
		}
	}
	if doc["apiVersion"] != "v1" || doc["kind"] != "Secret" || doc["type"] != "Opaque" {
		t.Errorf("top-level fields not readable: %v %v %v", doc["apiVersion"], doc["kind"], doc["type"])
	}
	// Exactly the stringData values are encrypted, every one of them.
	var walk func(path []string, v any)
	walk = func(path []string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				walk(append(slices.Clone(path), k), c)
			}
		case []any:
			for _, c := range v {
				walk(path, c)
			}
		default:
			s, _ := v.(string)
			enc := strings.HasPrefix(s, "ENC[AES256_GCM,")
			inData := len(path) > 0 && (path[0] == "stringData" || path[0] == "data")
			if path[0] == "sops" {
				return
			}
			if enc != inData {
				t.Errorf("%s: encrypted=%v, want %v (%q)", strings.Join(path, "."), enc, inData, s)
			}
		}
	}
	walk(nil, doc)
	if sd := doc["stringData"].(map[string]any); len(sd) != len(ex.Values) {
		t.Errorf("stringData has %d entries in ciphertext, want %d", len(sd), len(ex.Values))
	}
	sopsMD := doc["sops"].(map[string]any)
	if sopsMD["encrypted_regex"] != EncryptedRegex {
		t.Errorf("encrypted_regex = %v", sopsMD["encrypted_regex"])
	}
}

func TestDecryptErrors(t *testing.T) {
	ids, rcpt := testKey(t)
	cipher, err := Encrypt(renderTest(t), []string{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := otherKey(t, 42)

	_, err = Decrypt(cipher, wrong)
	if !errors.Is(err, ErrNoMatchingIdentity) || !strings.Contains(err.Error(), rcpt) {
		t.Errorf("wrong identity: got %v; want ErrNoMatchingIdentity naming %s", err, rcpt)
	}
	// Never falls back to the environment, even when it holds the right key.
	t.Setenv(EnvAgeKeyFile, testKeyPath)
	if _, err := Decrypt(cipher); !errors.Is(err, ErrNoIdentities) {
		t.Errorf("no identity: got %v, want ErrNoIdentities", err)
	}
	if _, err := Decrypt(cipher, wrong); !errors.Is(err, ErrNoMatchingIdentity) {
		t.Errorf("wrong identity with SOPS_AGE_KEY_FILE set: got %v", err)
	}
	// The wrong identity among others is fine.
	if _, err := Decrypt(cipher, wrong, ids[0]); err != nil {
		t.Errorf("wrong+right identity: %v", err)
	}
	// Editing cleartext metadata breaks the MAC.
	tampered := bytes.Replace(cipher, []byte(`hl.dev/rotatable: "true"`), []byte(`hl.dev/rotatable: "false"`), 1)
	if bytes.Equal(tampered, cipher) {
		t.Fatal("tamper target not found")
	}
	if _, err := Decrypt(tampered, ids...); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("tampered metadata: got %v, want ErrMACMismatch", err)
	}
	// So does editing lastmodified (additional data of the MAC).
	re := bytes.Index(cipher, []byte("lastmodified: \""))
	tampered = slices.Clone(cipher)
	copy(tampered[re+len("lastmodified: \""):], "1999")
	if _, err := Decrypt(tampered, ids...); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("tampered lastmodified: got %v, want ErrMACMismatch", err)
	}
	if _, err := Decrypt(renderTest(t), ids...); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("plaintext input: got %v, want ErrNotEncrypted", err)
	}
	if _, err := Encrypt(cipher, []string{rcpt}); !errors.Is(err, ErrAlreadyEncrypted) {
		t.Errorf("double encryption: got %v, want ErrAlreadyEncrypted", err)
	}
	for _, bad := range [][]string{nil, {""}, {"age1notakey"}, {"AGE-SECRET-KEY-1QQQ"}} {
		if _, err := Encrypt(renderTest(t), bad); err == nil {
			t.Errorf("Encrypt accepted recipients %q", bad)
		}
	}
}

func TestRecipientsUpdateKeysRotate(t *testing.T) {
	ids, rcpt := testKey(t)
	newID, newRcpt := otherKey(t, 43)
	plain := renderTest(t)
	cipher, err := Encrypt(plain, []string{rcpt, rcpt})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Recipients(cipher); !slices.Equal(got, []string{rcpt}) {
		t.Errorf("Recipients = %v, want [%s] (deduplicated)", got, rcpt)
	}
	if _, err := Recipients(plain); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("Recipients(plain): %v", err)
	}

	// Same recipients: unchanged bytes.
	same, err := UpdateKeys(cipher, []string{rcpt}, ids...)
	if err != nil || !bytes.Equal(same, cipher) {
		t.Errorf("UpdateKeys with the same recipients changed the file (err %v)", err)
	}

	tests := []struct {
		name string
		op   func([]byte, []string, ...age.Identity) ([]byte, error)
	}{{"UpdateKeys", UpdateKeys}, {"Rotate", Rotate}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Replace the test key by the new key.
			out, err := tt.op(cipher, []string{newRcpt}, ids...)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := Recipients(out); !slices.Equal(got, []string{newRcpt}) {
				t.Errorf("Recipients = %v, want [%s]", got, newRcpt)
			}
			if eq, err := PlainEqual(out, plain, newID); err != nil || !eq {
				t.Errorf("new key: PlainEqual = %v, %v", eq, err)
			}
			if _, err := Decrypt(out, ids...); !errors.Is(err, ErrNoMatchingIdentity) {
				t.Errorf("removed key still decrypts (err %v)", err)
			}
			oldVals := encryptedValues(t, cipher)
			newVals := encryptedValues(t, out)
			if tt.name == "UpdateKeys" && !slices.Equal(oldVals, newVals) {
				t.Errorf("UpdateKeys re-encrypted the values")
			}
			if tt.name == "Rotate" {
				for i := range oldVals {
					if oldVals[i] == newVals[i] {
						t.Errorf("Rotate kept ciphertext %q", oldVals[i])
					}
				}
			}
			// The operation needs a working identity.
			if _, err := tt.op(cipher, []string{newRcpt}, newID); !errors.Is(err, ErrNoMatchingIdentity) {
				t.Errorf("without the old key: got %v", err)
			}
		})
	}

	// Rotate with nil recipients keeps the recipient set but not the data key.
	rot, err := Rotate(cipher, nil, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Recipients(rot); !slices.Equal(got, []string{rcpt}) {
		t.Errorf("Rotate(nil) recipients %v", got)
	}
	if eq, err := PlainEqual(rot, plain, ids...); err != nil || !eq {
		t.Errorf("Rotate(nil): PlainEqual = %v, %v", eq, err)
	}
}

func encryptedValues(t *testing.T, cipher []byte) []string {
	t.Helper()
	var doc struct {
		StringData map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal(cipher, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(doc.StringData)) {
		out = append(out, doc.StringData[k])
	}
	return out
}

func TestPlainEqual(t *testing.T) {
	ids, rcpt := testKey(t)
	plain := renderTest(t)
	cipher, err := Encrypt(plain, []string{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	// Re-encrypting the same plaintext yields different bytes: this is why
	// PlainEqual exists.
	again, _ := Encrypt(plain, []string{rcpt})
	if bytes.Equal(again, cipher) {
		t.Errorf("two encryptions are byte-identical; expected fresh randomness")
	}
	reindented := bytes.ReplaceAll(plain, []byte("\n  "), []byte("\n    "))
	tests := []struct {
		name string
		new  []byte
		want bool
	}{
		{"same", plain, true},
		{"same, other indentation", reindented, true},
		{"value changed", bytes.Replace(plain, []byte("token: "), []byte("token: 00"), 1), false},
		{"annotation changed", bytes.Replace(plain, []byte("hl.dev/rotate-after: 90d"), []byte("hl.dev/rotate-after: 30d"), 1), false},
		{"name changed", bytes.Replace(plain, []byte("name: gitea-admin"), []byte("name: gitea-admin2"), 1), false},
		{"key added", append(slices.Clone(plain), "  extra: x\n"...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "same" && tt.name != "key added" && bytes.Equal(tt.new, plain) {
				t.Fatal("test edit did not apply")
			}
			got, err := PlainEqual(cipher, tt.new, ids...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PlainEqual = %v, want %v", got, tt.want)
			}
		})
	}
	wrong, _ := otherKey(t, 44)
	if _, err := PlainEqual(cipher, plain, wrong); !errors.Is(err, ErrNoMatchingIdentity) {
		t.Errorf("wrong key: %v", err)
	}
}

// A file written by the sops 3.13.3 CLI (comments, int, bool, list and
// empty values in the encrypted part) decrypts with Decrypt.
func TestDecryptSopsCLIFile(t *testing.T) {
	ids, _ := testKey(t)
	cipher, err := os.ReadFile("testdata/sops-cli-3.13.3.sops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/sops-cli-3.13.3.plain.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(cipher, ids...)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	yaml.Unmarshal(got, &a)
	yaml.Unmarshal(want, &b)
	if !yamlEqual(a, b) || !bytes.Contains(got, []byte("# a comment in encrypted part")) {
		t.Errorf("decrypted CLI file:\n%s\nwant:\n%s", got, want)
	}
}

// Our files decrypt through sops' own key service path, which is what the
// sops CLI, KSOPS and helm-secrets use (identities from SOPS_AGE_KEY_FILE).
func TestSopsKeyServiceReadsOurFiles(t *testing.T) {
	_, rcpt := testKey(t)
	cipher, err := Encrypt(renderTest(t), []string{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvAgeKeyFile, testKeyPath)
	t.Setenv(EnvAgeKey, "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	tree, err := libStore(2).LoadEncryptedFile(cipher)
	if err != nil {
		t.Fatal(err)
	}
	key, err := tree.Metadata.GetDataKey()
	if err != nil {
		t.Fatalf("sops could not get the data key: %v", err)
	}
	c := aes.NewCipher()
	mac, err := tree.Decrypt(key, c)
	if err != nil {
		t.Fatal(err)
	}
	fileMAC, err := c.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || fileMAC != mac {
		t.Fatalf("sops MAC check failed: %v", err)
	}
	if _, ok := tree.Metadata.KeyGroups[0][0].(*sopsage.MasterKey); !ok {
		t.Errorf("key is %T", tree.Metadata.KeyGroups[0][0])
	}
}

func TestSopsConfig(t *testing.T) {
	_, rcpt := testKey(t)
	_, other := otherKey(t, 45)
	out := SopsConfig([]string{rcpt, other, rcpt})
	dir := t.TempDir()
	path := filepath.Join(dir, ".sops.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"platform/gitea/admin.sops.yaml", "apps/x/s.sops.yml"} {
		conf, err := config.LoadCreationRuleForFile(path, filepath.Join(dir, f), nil)
		if err != nil {
			t.Fatalf("%s: sops rejected the config: %v\n%s", f, err, out)
		}
		if conf == nil {
			t.Fatalf("%s: no creation rule matched", f)
		}
		if conf.EncryptedRegex != EncryptedRegex {
			t.Errorf("encrypted_regex %q", conf.EncryptedRegex)
		}
		var got []string
		for _, k := range conf.KeyGroups[0] {
			got = append(got, k.ToString())
		}
		if !slices.Equal(got, []string{rcpt, other}) {
			t.Errorf("recipients %v, want [%s %s]\n%s", got, rcpt, other, out)
		}
	}
	if conf, err := config.LoadCreationRuleForFile(path, filepath.Join(dir, "values.yaml"), nil); err == nil && conf != nil {
		t.Errorf("values.yaml matched a creation rule")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func yamlEqual(a, b any) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return bytes.Equal(x, y)
}

func TestConcurrentUse(t *testing.T) {
	ids, rcpt := testKey(t)
	plain := renderTest(t)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			c, err := Encrypt(plain, []string{rcpt})
			if err == nil {
				var eq bool
				eq, err = PlainEqual(c, plain, ids...)
				if err == nil && !eq {
					err = errors.New("round trip not equal")
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
