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
	sopsage "github.com/getsops/sops/v3/age"
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
	// ErrMACMismatch: a value or the MAC does not authenticate, or the MAC
	// does not match the values.
	ErrMACMismatch      = errors.New("sops MAC mismatch: the file was modified outside sops")
	ErrNotEncrypted     = errors.New("not a sops-encrypted file")
	ErrAlreadyEncrypted = errors.New("document already has sops metadata")
)

// sopsVersion is written into the metadata, as the sops CLI does: the
// version of the linked sops module, whose file format this package
// implements and whose age key source it uses.
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

// sopsFile is a loaded sops file: its documents (values encrypted or not,
// depending on the step) and its metadata.
type sopsFile struct {
	branches []treeBranch
	md       metadata
}

// Encrypt encrypts the data/stringData values of plainYAML (sops format,
// YAML store) for the given age recipients (age1..., as in .sops.yaml). A
// fresh data key and IVs are drawn from crypto/rand on every call.
func Encrypt(plainYAML []byte, recipients []string) ([]byte, error) {
	keys, err := masterKeys(recipients)
	if err != nil {
		return nil, err
	}
	branches, err := loadPlain(plainYAML)
	if err != nil {
		return nil, fmt.Errorf("parsing YAML to encrypt: %w", err)
	}
	if len(branches) == 0 {
		return nil, errors.New("nothing to encrypt: empty YAML document")
	}
	for _, b := range branches {
		if hasSopsTopLevelKey(b) {
			return nil, ErrAlreadyEncrypted
		}
	}
	return encryptFile(&sopsFile{
		branches: branches,
		md: metadata{
			encryptedRegex: EncryptedRegex,
			version:        sopsVersion(),
		},
	}, keys)
}

// Decrypt returns the plaintext YAML of a sops file, after verifying its
// MAC. Only the given identities are used: the environment and
// ~/.config/sops are never consulted (see LoadIdentities).
func Decrypt(cipherYAML []byte, identities ...age.Identity) ([]byte, error) {
	out, _, err := DecryptRecipients(cipherYAML, identities...)
	return out, err
}

// DecryptRecipients is Decrypt that also returns the file's age recipients
// (as Recipients does), parsing the file once for both.
func DecryptRecipients(cipherYAML []byte, identities ...age.Identity) ([]byte, []string, error) {
	f, _, err := decryptFile(cipherYAML, identities)
	if err != nil {
		return nil, nil, err
	}
	out, err := emitPlain(f.branches)
	if err != nil {
		return nil, nil, fmt.Errorf("emitting decrypted YAML: %w", err)
	}
	return out, f.md.ageRecipients(), nil
}

// Recipients lists the age recipients a sops file is encrypted for, in file
// order. Master keys of other types (pgp, kms, ...) are not listed.
func Recipients(cipherYAML []byte) ([]string, error) {
	f, err := loadEncrypted(cipherYAML)
	if err != nil {
		return nil, err
	}
	return f.md.ageRecipients(), nil
}

func (md *metadata) ageRecipients() []string {
	var out []string
	for _, g := range md.keyGroups {
		for _, k := range g.age {
			out = append(out, k.recipient)
		}
	}
	return out
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
	f, err := loadEncrypted(cipherYAML)
	if err != nil {
		return nil, err
	}
	plain := &sopsFile{branches: cloneBranches(f.branches), md: f.md}
	dataKey, err := decryptLoaded(plain, identities)
	if err != nil {
		return nil, err
	}
	keys, err := masterKeys(want)
	if err != nil {
		return nil, err
	}
	group, err := wrapDataKey(keys, dataKey)
	if err != nil {
		return nil, err
	}
	f.md.keyGroups = []keyGroup{group}
	f.md.shamirThreshold = 0
	return emitEncrypted(f)
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
	keys, err := masterKeys(recipients)
	if err != nil {
		return nil, err
	}
	f, _, err := decryptFile(cipherYAML, identities)
	if err != nil {
		return nil, err
	}
	f.md.mac = ""
	f.md.shamirThreshold = 0
	f.md.version = sopsVersion()
	return encryptFile(f, keys)
}

// PlainEqual reports whether existingCipher decrypts to the same document as
// newPlain: data/stringData values and the cleartext metadata alike,
// compared as sops trees (keys in order, value types, comments), so
// formatting differences of newPlain (indentation, quoting style) do not
// count. The MAC of existingCipher is verified. When it returns true (and
// Recipients match), keep existingCipher byte for byte instead of
// re-encrypting.
func PlainEqual(existingCipher, newPlain []byte, identities ...age.Identity) (bool, error) {
	old, _, err := decryptFile(existingCipher, identities)
	if err != nil {
		return false, err
	}
	return branchesEqual(old.branches, newPlain)
}

// PlainTextEqual is PlainEqual for a caller that already decrypted the
// existing file (Decrypt's output): the same document comparison without
// a second decryption.
func PlainTextEqual(oldPlain, newPlain []byte) (bool, error) {
	old, err := loadPlain(oldPlain)
	if err != nil {
		return false, fmt.Errorf("parsing old plaintext: %w", err)
	}
	return branchesEqual(old, newPlain)
}

func branchesEqual(old []treeBranch, newPlain []byte) (bool, error) {
	branches, err := loadPlain(newPlain)
	if err != nil {
		return false, fmt.Errorf("parsing new plaintext: %w", err)
	}
	if len(branches) != len(old) {
		return false, nil
	}
	for i := range branches {
		if !treeEqual(old[i], branches[i]) {
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

// masterKeys parses the (deduplicated) recipients into sops age master
// keys, which wrap the data key.
func masterKeys(recipients []string) ([]*sopsage.MasterKey, error) {
	rs := dedupe(recipients)
	if len(rs) == 0 {
		return nil, errors.New("no age recipients given")
	}
	keys := make([]*sopsage.MasterKey, 0, len(rs))
	for _, r := range rs {
		k, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			return nil, fmt.Errorf("age recipient %q: %w", r, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// wrapDataKey encrypts the data key for every recipient with sops' age key
// source (an armored age file per recipient), without sops' key service,
// whose local server would look for identities in the environment.
func wrapDataKey(keys []*sopsage.MasterKey, dataKey []byte) (keyGroup, error) {
	var g keyGroup
	for _, k := range keys {
		if err := k.Encrypt(dataKey); err != nil {
			return keyGroup{}, fmt.Errorf("wrapping data key for %s: %w", k.ToString(), err)
		}
		g.age = append(g.age, ageKey{recipient: k.Recipient, enc: k.EncryptedKey})
	}
	return g, nil
}

func hasSopsTopLevelKey(b treeBranch) bool {
	for _, item := range b {
		if item.Key == sopsMetadataKey {
			return true
		}
	}
	return false
}

func cloneBranches(in []treeBranch) []treeBranch {
	out := make([]treeBranch, len(in))
	for i, b := range in {
		out[i] = cloneValue(b).(treeBranch)
	}
	return out
}

// encryptFile encrypts f's plaintext documents in place under a new data
// key wrapped for keys, sets lastmodified and the MAC, and emits the file.
func encryptFile(f *sopsFile, keys []*sopsage.MasterKey) ([]byte, error) {
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, err
	}
	group, err := wrapDataKey(keys, dataKey)
	if err != nil {
		return nil, err
	}
	f.md.keyGroups = []keyGroup{group}
	c, err := newValueCipher(dataKey)
	if err != nil {
		return nil, err
	}
	mac, err := encryptBranches(f.branches, &f.md, c)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	// sops bookkeeping only (additional data of the MAC); hl tracks secret
	// age in hl.dev/generated-at.
	f.md.lastModified = time.Now().UTC().Truncate(time.Second)
	if f.md.mac, err = c.encrypt(mac, f.md.lastModified.Format(time.RFC3339)); err != nil {
		return nil, fmt.Errorf("encrypting MAC: %w", err)
	}
	return emitEncrypted(f)
}

func emitEncrypted(f *sopsFile) ([]byte, error) {
	branches, err := withMetadata(f.branches, &f.md)
	if err != nil {
		return nil, fmt.Errorf("emitting encrypted YAML: %w", err)
	}
	out, err := emitPlain(branches)
	if err != nil {
		return nil, fmt.Errorf("emitting encrypted YAML: %w", err)
	}
	return out, nil
}

func loadEncrypted(cipherYAML []byte) (*sopsFile, error) {
	branches, err := loadPlain(cipherYAML)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotEncrypted, err)
	}
	branches, md, err := extractMetadata(branches)
	if err != nil {
		if errors.Is(err, errMetadataNotFound) {
			return nil, ErrNotEncrypted
		}
		return nil, fmt.Errorf("%w: %v", ErrNotEncrypted, err)
	}
	return &sopsFile{branches: branches, md: md}, nil
}

// decryptFile loads and decrypts a sops file and verifies its MAC. It
// returns the decrypted file and the data key.
func decryptFile(cipherYAML []byte, identities []age.Identity) (*sopsFile, []byte, error) {
	if len(identities) == 0 {
		return nil, nil, ErrNoIdentities
	}
	f, err := loadEncrypted(cipherYAML)
	if err != nil {
		return nil, nil, err
	}
	dataKey, err := decryptLoaded(f, identities)
	if err != nil {
		return nil, nil, err
	}
	return f, dataKey, nil
}

// decryptLoaded decrypts f in place and verifies the MAC.
func decryptLoaded(f *sopsFile, identities []age.Identity) ([]byte, error) {
	if len(identities) == 0 {
		return nil, ErrNoIdentities
	}
	dataKey, err := unwrapDataKey(&f.md, identities)
	if err != nil {
		return nil, err
	}
	c, err := newValueCipher(dataKey)
	if err != nil {
		return nil, err
	}
	mac, err := decryptBranches(f.branches, &f.md, c)
	if errors.Is(err, errValueIntegrity) {
		return nil, fmt.Errorf("%w: %v", ErrMACMismatch, err)
	}
	if err != nil {
		return nil, fmt.Errorf("decrypting values: %w", err)
	}
	fileMAC, err := c.decrypt(f.md.mac, f.md.lastModified.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("%w (cannot decrypt the stored MAC: %v)", ErrMACMismatch, err)
	}
	if s, ok := fileMAC.(string); !ok || s != mac {
		return nil, ErrMACMismatch
	}
	return dataKey, nil
}

// unwrapDataKey recovers the data key from the file's age keys with the
// given identities only: sops' age key source is handed the identities, so
// it never falls back to SOPS_AGE_KEY*, ~/.config/sops/age/keys.txt or ssh
// keys from the environment.
func unwrapDataKey(md *metadata, identities []age.Identity) ([]byte, error) {
	if len(md.keyGroups) != 1 {
		return nil, fmt.Errorf("file has %d key groups; hl supports exactly one (no Shamir splitting)", len(md.keyGroups))
	}
	var recipients []string
	var errs []error
	for _, k := range md.keyGroups[0].age {
		recipients = append(recipients, k.recipient)
		mk := &sopsage.MasterKey{Recipient: k.recipient, EncryptedKey: k.enc}
		sopsage.ParsedIdentities(identities).ApplyToMasterKey(mk)
		key, err := mk.Decrypt()
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
