package secrets

import (
	"crypto/rand"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
)

// EncryptedRegex selects the parts of a document sops encrypts: the data
// and stringData maps of a Secret. Everything else stays readable.
const EncryptedRegex = `^(data|stringData)$`

// SecretPathRegex is the .sops.yaml path_regex: secrets live in files named
// *.sops.yaml (or *.sops.yml).
const SecretPathRegex = `\.sops\.ya?ml$`

// Errors callers may want to tell apart (errors.Is).
var (
	ErrNoIdentities       = errors.New("no age identity given")
	ErrNoMatchingIdentity = errors.New("none of the age identities can decrypt this file")
	ErrMACMismatch        = errors.New("sops MAC mismatch: the file was modified outside sops")
	ErrNotEncrypted       = errors.New("not a sops-encrypted file")
	ErrAlreadyEncrypted   = errors.New("document already has sops metadata")
)

// sopsVersion is written into the metadata, as the sops CLI does; it is the
// linked sops module version.
var sopsVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/getsops/sops/v3" {
				return strings.TrimPrefix(m.Version, "v")
			}
		}
	}
	return "3.13.3"
})

func newStore() *sopsyaml.Store {
	return sopsyaml.NewStore(&config.YAMLStoreConfig{Indent: 2})
}

// Encrypt encrypts the data/stringData values of plainYAML (sops format,
// YAML store) for the given age recipients (age1..., as in .sops.yaml). A
// fresh data key and IVs are drawn from crypto/rand on every call.
func Encrypt(plainYAML []byte, recipients []string) ([]byte, error) {
	group, err := keyGroup(recipients)
	if err != nil {
		return nil, err
	}
	store := newStore()
	branches, err := store.LoadPlainFile(plainYAML)
	if err != nil {
		return nil, fmt.Errorf("parsing YAML to encrypt: %w", err)
	}
	if len(branches) == 0 {
		return nil, errors.New("nothing to encrypt: empty YAML document")
	}
	for _, b := range branches {
		if store.HasSopsTopLevelKey(b) {
			return nil, ErrAlreadyEncrypted
		}
	}
	tree := sops.Tree{
		Branches: branches,
		Metadata: sops.Metadata{
			EncryptedRegex: EncryptedRegex,
			Version:        sopsVersion(),
		},
	}
	return encryptTree(tree, group)
}

// Decrypt returns the plaintext YAML of a sops file, after verifying its
// MAC. Only the given identities are used: the environment and
// ~/.config/sops are never consulted (see LoadIdentities).
func Decrypt(cipherYAML []byte, identities ...age.Identity) ([]byte, error) {
	tree, _, err := decryptTree(cipherYAML, identities)
	if err != nil {
		return nil, err
	}
	out, err := newStore().EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, fmt.Errorf("emitting decrypted YAML: %w", err)
	}
	return out, nil
}

// Recipients lists the age recipients a sops file is encrypted for, in file
// order. Master keys of other types (pgp, kms, ...) are not listed.
func Recipients(cipherYAML []byte) ([]string, error) {
	tree, err := loadEncrypted(cipherYAML)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range tree.Metadata.KeyGroups {
		for _, k := range g {
			if ak, ok := k.(*sopsage.MasterKey); ok {
				out = append(out, ak.Recipient)
			}
		}
	}
	return out, nil
}

// UpdateKeys re-wraps the file's data key for exactly the given recipients
// (sops updatekeys). Values, MAC and lastmodified are untouched, so the diff
// is limited to the sops.age block; when the recipient set is already right
// the input is returned unchanged. A removed recipient can no longer decrypt
// this file, but anyone who saw the old data key still can (git history):
// use Rotate when a key is being revoked.
func UpdateKeys(cipherYAML []byte, recipients []string, identities ...age.Identity) ([]byte, error) {
	want, err := normalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	have, err := Recipients(cipherYAML)
	if err != nil {
		return nil, err
	}
	if slices.Equal(have, want) {
		return cipherYAML, nil
	}
	// Decrypting checks the identities and the MAC before anything is
	// rewritten, and yields the data key.
	_, dataKey, err := decryptTree(cipherYAML, identities)
	if err != nil {
		return nil, err
	}
	tree, err := loadEncrypted(cipherYAML)
	if err != nil {
		return nil, err
	}
	group, err := keyGroup(want)
	if err != nil {
		return nil, err
	}
	if err := wrapDataKey(group, dataKey); err != nil {
		return nil, err
	}
	tree.Metadata.KeyGroups = []sops.KeyGroup{group}
	tree.Metadata.ShamirThreshold = 0
	return newStore().EmitEncryptedFile(tree)
}

// Rotate decrypts the file and encrypts it again under a new data key with
// fresh IVs (sops rotate), for the given recipients, or for the file's
// current age recipients when recipients is nil. The file's encryption rules
// (encrypted_regex etc.) are kept.
func Rotate(cipherYAML []byte, recipients []string, identities ...age.Identity) ([]byte, error) {
	if recipients == nil {
		var err error
		if recipients, err = Recipients(cipherYAML); err != nil {
			return nil, err
		}
	}
	group, err := keyGroup(recipients)
	if err != nil {
		return nil, err
	}
	tree, _, err := decryptTree(cipherYAML, identities)
	if err != nil {
		return nil, err
	}
	tree.Metadata.MessageAuthenticationCode = ""
	tree.Metadata.DataKey = nil
	tree.Metadata.ShamirThreshold = 0
	tree.Metadata.Version = sopsVersion()
	return encryptTree(tree, group)
}

// PlainEqual reports whether existingCipher decrypts to the same document as
// newPlain: data/stringData values and the cleartext metadata alike,
// compared as sops trees (keys in order, value types, comments), so
// formatting differences of newPlain (indentation, quoting style) do not
// count. The MAC of existingCipher is verified. When it returns true (and
// Recipients match), keep existingCipher byte for byte instead of
// re-encrypting.
func PlainEqual(existingCipher, newPlain []byte, identities ...age.Identity) (bool, error) {
	old, _, err := decryptTree(existingCipher, identities)
	if err != nil {
		return false, err
	}
	return branchesEqual(old.Branches, newPlain)
}

// PlainTextEqual is PlainEqual for a caller that already decrypted the
// existing file (Decrypt's output): the same document comparison without
// a second decryption.
func PlainTextEqual(oldPlain, newPlain []byte) (bool, error) {
	old, err := newStore().LoadPlainFile(oldPlain)
	if err != nil {
		return false, fmt.Errorf("parsing old plaintext: %w", err)
	}
	return branchesEqual(old, newPlain)
}

func branchesEqual(old sops.TreeBranches, newPlain []byte) (bool, error) {
	branches, err := newStore().LoadPlainFile(newPlain)
	if err != nil {
		return false, fmt.Errorf("parsing new plaintext: %w", err)
	}
	if len(branches) != len(old) {
		return false, nil
	}
	for i := range branches {
		if !old[i].Equals(branches[i]) {
			return false, nil
		}
	}
	return true, nil
}

// SopsConfig renders .sops.yaml: one creation rule for *.sops.yaml files
// that encrypts only data/stringData for the given age recipients.
func SopsConfig(recipients []string) []byte {
	var b strings.Builder
	b.WriteString("# Rendered by hl. Secrets live in files named *.sops.yaml; only their\n")
	b.WriteString("# data and stringData are encrypted, for these age recipients.\n")
	b.WriteString("creation_rules:\n")
	fmt.Fprintf(&b, "  - path_regex: '%s'\n", SecretPathRegex)
	fmt.Fprintf(&b, "    encrypted_regex: '%s'\n", EncryptedRegex)
	fmt.Fprintf(&b, "    age: '%s'\n", strings.Join(dedupe(recipients), ","))
	return []byte(b.String())
}

// ValidateRecipient reports whether r is a recipient sops can encrypt to
// (age1..., age1pq1..., or an ssh-ed25519/ssh-rsa public key).
func ValidateRecipient(r string) error {
	_, err := sopsage.MasterKeyFromRecipient(r)
	return err
}

func dedupe(in []string) []string {
	var out []string
	for _, r := range in {
		r = strings.TrimSpace(r)
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func normalizeRecipients(recipients []string) ([]string, error) {
	out := dedupe(recipients)
	if len(out) == 0 {
		return nil, errors.New("no age recipients given")
	}
	for _, r := range out {
		if err := ValidateRecipient(r); err != nil {
			return nil, fmt.Errorf("age recipient %q: %w", r, err)
		}
	}
	return out, nil
}

func keyGroup(recipients []string) (sops.KeyGroup, error) {
	rs, err := normalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	group := make(sops.KeyGroup, 0, len(rs))
	for _, r := range rs {
		k, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			return nil, fmt.Errorf("age recipient %q: %w", r, err)
		}
		group = append(group, k)
	}
	return group, nil
}

// wrapDataKey encrypts the data key for every key of the group directly,
// bypassing sops' keyservice (whose local server would look for identities
// in the environment).
func wrapDataKey(group sops.KeyGroup, dataKey []byte) error {
	for _, k := range group {
		if err := k.Encrypt(dataKey); err != nil {
			return fmt.Errorf("wrapping data key for %s: %w", k.ToString(), err)
		}
	}
	return nil
}

func encryptTree(tree sops.Tree, group sops.KeyGroup) ([]byte, error) {
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, err
	}
	if err := wrapDataKey(group, dataKey); err != nil {
		return nil, err
	}
	tree.Metadata.KeyGroups = []sops.KeyGroup{group}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	// sops bookkeeping only (additional data of the MAC); hl tracks secret
	// age in hl.dev/generated-at.
	tree.Metadata.LastModified = time.Now().UTC().Truncate(time.Second)
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("encrypting MAC: %w", err)
	}
	out, err := newStore().EmitEncryptedFile(tree)
	if err != nil {
		return nil, fmt.Errorf("emitting encrypted YAML: %w", err)
	}
	return out, nil
}

func loadEncrypted(cipherYAML []byte) (sops.Tree, error) {
	tree, err := newStore().LoadEncryptedFile(cipherYAML)
	if err != nil {
		if errors.Is(err, sops.MetadataNotFound) {
			return sops.Tree{}, ErrNotEncrypted
		}
		return sops.Tree{}, fmt.Errorf("%w: %v", ErrNotEncrypted, err)
	}
	return tree, nil
}

// decryptTree decrypts in place and verifies the MAC. It returns the
// decrypted tree and the data key.
func decryptTree(cipherYAML []byte, identities []age.Identity) (sops.Tree, []byte, error) {
	if len(identities) == 0 {
		return sops.Tree{}, nil, ErrNoIdentities
	}
	tree, err := loadEncrypted(cipherYAML)
	if err != nil {
		return sops.Tree{}, nil, err
	}
	dataKey, err := unwrapDataKey(tree.Metadata, identities)
	if err != nil {
		return sops.Tree{}, nil, err
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(dataKey, cipher)
	if err != nil {
		return sops.Tree{}, nil, fmt.Errorf("decrypting values: %w", err)
	}
	fileMAC, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return sops.Tree{}, nil, fmt.Errorf("%w (cannot decrypt the stored MAC: %v)", ErrMACMismatch, err)
	}
	if s, ok := fileMAC.(string); !ok || s != mac {
		return sops.Tree{}, nil, ErrMACMismatch
	}
	return tree, dataKey, nil
}

func unwrapDataKey(md sops.Metadata, identities []age.Identity) ([]byte, error) {
	if len(md.KeyGroups) != 1 {
		return nil, fmt.Errorf("file has %d key groups; hl supports exactly one (no Shamir splitting)", len(md.KeyGroups))
	}
	var recipients []string
	var errs []error
	for _, k := range md.KeyGroups[0] {
		ak, ok := k.(*sopsage.MasterKey)
		if !ok {
			continue // hl decrypts with age only
		}
		recipients = append(recipients, ak.Recipient)
		// Inject the identities so sops never falls back to SOPS_AGE_KEY*,
		// ~/.config/sops/age/keys.txt or ssh keys from the environment.
		sopsage.ParsedIdentities(identities).ApplyToMasterKey(ak)
		key, err := ak.Decrypt()
		if err == nil {
			return key, nil
		}
		errs = append(errs, err)
	}
	if len(recipients) == 0 {
		return nil, fmt.Errorf("%w: the file has no age recipients", ErrNoMatchingIdentity)
	}
	return nil, fmt.Errorf("%w: tried %d identities against recipients %s: %w",
		ErrNoMatchingIdentity, len(identities), strings.Join(recipients, ", "), errors.Join(errs...))
}
