package metal

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"hl.dev/hl/secrets"
)

// Secret placeholders in rendered node files, replaced when served. A
// file holding one is served only with a live token, at most once per
// install window (see Window.Released).
const (
	// PlaceholderK3sToken is the server token: it joins servers (and
	// agents), so only servers' k3s configs may hold it.
	PlaceholderK3sToken = "@@HL_K3S_TOKEN@@"
	// PlaceholderK3sAgentToken is the agent token: servers are
	// configured with it (agent-token) and agents join with it (token);
	// it cannot join a server.
	PlaceholderK3sAgentToken = "@@HL_K3S_AGENT_TOKEN@@"
)

// Secrets are the decrypted metal secrets the server needs.
type Secrets struct {
	K3sToken      string
	K3sAgentToken string
	APIToken      string
}

// secretRef names a value in metal/secrets.
type secretRef struct{ file, key string }

var (
	k3sTokenRef      = secretRef{"k3s-token", "token"}
	k3sAgentTokenRef = secretRef{"k3s-agent-token", "token"}
	apiTokenRef      = secretRef{"metal-api-token", "token"}
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
			return "", fmt.Errorf("%w (render the repo with this version of hl to add it)", err)
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
	for _, x := range []struct {
		ref secretRef
		dst *string
	}{{k3sTokenRef, &s.K3sToken}, {k3sAgentTokenRef, &s.K3sAgentToken}, {apiTokenRef, &s.APIToken}} {
		v, err := read(x.ref)
		if err != nil {
			return nil, err
		}
		*x.dst = v
	}
	if s.K3sToken == s.K3sAgentToken {
		return nil, fmt.Errorf("%s: the agent token equals the server token: agents could join as servers", SecretsDir)
	}
	return s, nil
}

// holds says whether b has a secret placeholder.
func holdsSecret(b []byte) bool {
	return bytes.Contains(b, []byte(PlaceholderK3sToken)) || bytes.Contains(b, []byte(PlaceholderK3sAgentToken))
}

// fill replaces the secret placeholders of a file served to a node of the
// given role. An agent's file asking for the server token is refused: a
// hand-edited template must not hand workers the key to the control plane.
func (s *Secrets) fill(b []byte, role string) ([]byte, error) {
	if role != RoleServer && bytes.Contains(b, []byte(PlaceholderK3sToken)) {
		return nil, fmt.Errorf("the %s's file asks for the server token (%s); agents get %s only", role, PlaceholderK3sToken, PlaceholderK3sAgentToken)
	}
	b = bytes.ReplaceAll(b, []byte(PlaceholderK3sToken), []byte(s.K3sToken))
	return bytes.ReplaceAll(b, []byte(PlaceholderK3sAgentToken), []byte(s.K3sAgentToken)), nil
}

// tokenEqual compares secrets in constant time.
func tokenEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
