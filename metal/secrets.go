package metal

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"hl.dev/hl/secrets"
)

// Placeholders in rendered node files, replaced when served.
const (
	PlaceholderK3sToken      = "@@HL_K3S_TOKEN@@"
	PlaceholderCallbackToken = "@@HL_CALLBACK_TOKEN@@"
)

// Secrets are the decrypted metal secrets the server needs.
type Secrets struct {
	K3sToken    string
	callbackKey []byte
	APIToken    string
}

// secretRef names a value in metal/secrets.
type secretRef struct{ file, key string }

var (
	k3sTokenRef    = secretRef{"k3s-token", "token"}
	callbackKeyRef = secretRef{"metal-callback-key", "key"}
	apiTokenRef    = secretRef{"metal-api-token", "token"}
)

// LoadSecrets decrypts the metal secrets of the repo at dir.
func LoadSecrets(dir string, ids []age.Identity) (*Secrets, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("no age identity: hl metal serve decrypts %s/ to hand nodes their tokens (--age-key, %s or %s)", SecretsDir, secrets.EnvAgeKeyFile, secrets.EnvAgeKey)
	}
	read := func(r secretRef) (string, error) {
		p := filepath.Join(dir, filepath.FromSlash(SecretsDir), r.file+".sops.yaml")
		cipher, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		plain, err := secrets.Decrypt(cipher, ids...)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		ex, err := secrets.ReadSecret(plain)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		v := strings.TrimSpace(ex.Values[r.key])
		if v == "" {
			return "", fmt.Errorf("%s: key %q is empty", p, r.key)
		}
		return v, nil
	}
	s := &Secrets{}
	var err error
	if s.K3sToken, err = read(k3sTokenRef); err != nil {
		return nil, err
	}
	key, err := read(callbackKeyRef)
	if err != nil {
		return nil, err
	}
	s.callbackKey = []byte(key)
	if s.APIToken, err = read(apiTokenRef); err != nil {
		return nil, err
	}
	return s, nil
}

// NodeToken is the install token of the node with the given MAC:
// hex(HMAC-SHA256(metal-callback-key, normalised MAC)).
func (s *Secrets) NodeToken(mac string) string {
	m := hmac.New(sha256.New, s.callbackKey)
	m.Write([]byte(mac))
	return hex.EncodeToString(m.Sum(nil))
}

// tokenEqual compares secrets in constant time.
func tokenEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
