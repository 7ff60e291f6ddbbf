package metal

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

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
	// PlaceholderEtcdS3AccessKey and PlaceholderEtcdS3SecretKey are the
	// offsite backup target's S3 keys, with which servers upload etcd
	// snapshots (etcd-s3-access-key, etcd-s3-secret-key); agents run no
	// etcd and never get them.
	PlaceholderEtcdS3AccessKey = "@@HL_ETCD_S3_ACCESS_KEY@@"
	PlaceholderEtcdS3SecretKey = "@@HL_ETCD_S3_SECRET_KEY@@"
	// PlaceholderRolloutKey is the public half of the metal pipeline's SSH
	// key (an authorized_keys key: "ssh-ed25519 AAAA..."), which
	// post-install.sh puts on the node behind a forced reboot command. It
	// is no secret, but only the key the repo holds may be put there.
	PlaceholderRolloutKey = "@@HL_METAL_ROLLOUT_KEY@@"
)

// RolloutKeyFile holds the metal pipeline's SSH key (ssh-key, and its
// public half ssh-key.pub): Woodpecker hands the private key to
// .woodpecker/metal.yaml's step; a repo without Woodpecker has no file.
const RolloutKeyFile = "platform/woodpecker/secrets/metal-rollout-ssh.sops.yaml"

// EtcdS3SecretFile is where the etcd-s3 keys come from: the offsite
// backup target's Secret, so one key pair (the one the user puts in once
// with sops edit) serves the restic copies and the etcd snapshots.
const EtcdS3SecretFile = "system/backups/secrets/restic-offsite.sops.yaml"

// Secrets are the decrypted metal secrets the server needs.
type Secrets struct {
	K3sToken      string
	K3sAgentToken string
	APIToken      string
	// EtcdS3AccessKey and EtcdS3SecretKey are empty when the repo renders
	// no backups component (then no k3s config asks for them).
	EtcdS3AccessKey string
	EtcdS3SecretKey string
	// RolloutKey is the metal pipeline's public key (authorized_keys
	// form, no comment); empty when the repo has no RolloutKeyFile.
	RolloutKey string
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
		return readSecretKey(filepath.Join(dir, filepath.FromSlash(SecretsDir), r.file+".sops.yaml"), r.key, ids)
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
	// Only a repo with the backups component has the offsite keys, and only
	// then do the servers' k3s configs ask for them (fill checks).
	p := filepath.Join(dir, filepath.FromSlash(EtcdS3SecretFile))
	if _, err := os.Lstat(p); err == nil {
		var err error
		if s.EtcdS3AccessKey, err = readSecretKey(p, "AWS_ACCESS_KEY_ID", ids); err != nil {
			return nil, err
		}
		if s.EtcdS3SecretKey, err = readSecretKey(p, "AWS_SECRET_ACCESS_KEY", ids); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	p = filepath.Join(dir, filepath.FromSlash(RolloutKeyFile))
	if _, err := os.Lstat(p); err == nil {
		line, err := readSecretKey(p, "ssh-key"+secrets.PublicSuffix, ids)
		if err != nil {
			return nil, err
		}
		key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil || len(bytes.TrimSpace(rest)) > 0 {
			return nil, fmt.Errorf("%s: ssh-key.pub is not one SSH public key", RolloutKeyFile)
		}
		s.RolloutKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return s, nil
}

// fillPublic puts the metal pipeline's public key where a node file asks
// for it (PlaceholderRolloutKey); a file asking for it in a repo that has
// none is refused rather than served with the placeholder.
func (s *Secrets) fillPublic(b []byte) ([]byte, error) {
	if !bytes.Contains(b, []byte(PlaceholderRolloutKey)) {
		return b, nil
	}
	if s == nil || s.RolloutKey == "" {
		return nil, fmt.Errorf("the file asks for the metal pipeline's SSH key (%s) but the repo has no %s: render it with this version of hl (Woodpecker on)", PlaceholderRolloutKey, RolloutKeyFile)
	}
	return bytes.ReplaceAll(b, []byte(PlaceholderRolloutKey), []byte(s.RolloutKey)), nil
}

// readSecretKey decrypts one key of a SOPS Secret file.
func readSecretKey(p, key string, ids []age.Identity) (string, error) {
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
	v := strings.TrimSpace(ex.Values[key])
	if v == "" {
		return "", fmt.Errorf("%s: key %q is empty", p, key)
	}
	return v, nil
}

// holds says whether b has a secret placeholder.
func holdsSecret(b []byte) bool {
	for _, p := range []string{PlaceholderK3sToken, PlaceholderK3sAgentToken, PlaceholderEtcdS3AccessKey, PlaceholderEtcdS3SecretKey} {
		if bytes.Contains(b, []byte(p)) {
			return true
		}
	}
	return false
}

// fill replaces the secret placeholders of a file served to a node of the
// given role. An agent's file asking for the server token is refused: a
// hand-edited template must not hand workers the key to the control plane.
func (s *Secrets) fill(b []byte, role string) ([]byte, error) {
	if role != RoleServer && bytes.Contains(b, []byte(PlaceholderK3sToken)) {
		return nil, fmt.Errorf("the %s's file asks for the server token (%s); agents get %s only", role, PlaceholderK3sToken, PlaceholderK3sAgentToken)
	}
	for _, p := range []string{PlaceholderEtcdS3AccessKey, PlaceholderEtcdS3SecretKey} {
		if !bytes.Contains(b, []byte(p)) {
			continue
		}
		if role != RoleServer {
			return nil, fmt.Errorf("the %s's file asks for the etcd snapshot S3 keys (%s); only servers run etcd", role, p)
		}
		if s.EtcdS3AccessKey == "" || s.EtcdS3SecretKey == "" {
			return nil, fmt.Errorf("the file asks for the etcd snapshot S3 keys (%s) but the repo has no %s: render it with the backups component on", p, EtcdS3SecretFile)
		}
	}
	b = bytes.ReplaceAll(b, []byte(PlaceholderK3sToken), []byte(s.K3sToken))
	// The S3 keys are the user's (pasted with sops edit), not generated:
	// they land inside a YAML double-quoted scalar, so escape them there.
	for p, v := range map[string]string{PlaceholderEtcdS3AccessKey: s.EtcdS3AccessKey, PlaceholderEtcdS3SecretKey: s.EtcdS3SecretKey} {
		if !bytes.Contains(b, []byte(p)) {
			continue
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("%s: an S3 key holds a control character (a line break?): fix it with sops edit", EtcdS3SecretFile)
		}
		v = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
		b = bytes.ReplaceAll(b, []byte(p), []byte(v))
	}
	return bytes.ReplaceAll(b, []byte(PlaceholderK3sAgentToken), []byte(s.K3sAgentToken)), nil
}

// tokenEqual compares secrets in constant time.
func tokenEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
