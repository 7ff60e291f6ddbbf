package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"filippo.io/age"
)

// Options configure a rotation in a working tree.
type Options struct {
	// Now is the clock; its UTC date becomes hl.dev/generated-at.
	Now func() time.Time
	// Rand is the entropy for new values (crypto/rand when nil).
	Rand io.Reader
	// Recipients to encrypt for; nil keeps each file's current recipients.
	Recipients []string
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

func (o Options) rand() io.Reader {
	if o.Rand == nil {
		return rand.Reader
	}
	return o.Rand
}

// Rotation is what rotating one secret changed in the working tree.
type Rotation struct {
	Secret Secret `json:"secret"`
	// Files are the rewritten SOPS files: the secret and its copies.
	Files []string `json:"files"`
	// Workloads are the consumers whose checksum annotation changed.
	Workloads []Workload `json:"workloads,omitempty"`
	// Edited are the manifests and values files edited for the restarts.
	Edited []string `json:"edited,omitempty"`
	// ManualRestarts are commands for declared consumers no annotation
	// could be set for.
	ManualRestarts []string `json:"manualRestarts,omitempty"`
}

// ErrNotRotatable is returned (wrapped) for secrets marked
// hl.dev/rotatable: "false".
var ErrNotRotatable = errors.New("secret is not rotatable by a git change")

// RotateSecret gives the generated secret s (a source, not a copy) new
// values from its generator spec, writes them with a fresh data key, gives
// its copies the same values, updates generated-at, and marks the
// consumers for restart. Old values are not needed (nor decrypted). all is
// the Scan result s comes from.
func RotateSecret(dir string, s Secret, all []Secret, opts Options) (*Rotation, error) {
	if s.CopyOf != "" {
		return nil, fmt.Errorf("%s is a copy of %s: rotate that one", s.File, s.CopyOf)
	}
	if !s.Rotatable {
		return nil, fmt.Errorf("%s/%s: %w", s.Namespace, s.Name, ErrNotRotatable)
	}
	spec, err := s.Spec()
	if err != nil {
		return nil, err
	}
	values, _, err := Values(spec, nil, opts.rand())
	if err != nil {
		return nil, err
	}
	return writeValues(dir, s, spec, all, values, opts)
}

// writeValues writes values into s (a source) and its copies with a
// fresh data key, dated today, and marks the consumers for restart.
func writeValues(dir string, s Secret, spec Spec, all []Secret, values map[string]string, opts Options) (*Rotation, error) {
	today := opts.now().UTC().Format(DateLayout)
	plain, err := Manifest(spec, values, today)
	if err != nil {
		return nil, err
	}
	rot := &Rotation{Secret: s}
	cipher, err := writeEncrypted(dir, s, plain, opts.Recipients)
	if err != nil {
		return nil, err
	}
	rot.Files = append(rot.Files, s.File)
	targets := []target{{Name: s.Name, Namespace: s.Namespace, File: s.File, Consumers: s.Consumers, Checksum: checksum(cipher)}}
	for _, c := range all {
		if c.CopyOf != s.File {
			continue
		}
		cspec, err := c.Spec()
		if err != nil {
			return nil, err
		}
		vals := map[string]string{}
		for k, from := range c.KeyMap {
			vals[k] = values[from]
		}
		cplain, err := Manifest(cspec, vals, today)
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", c.File, err)
		}
		ccipher, err := writeEncrypted(dir, c, cplain, opts.Recipients)
		if err != nil {
			return nil, err
		}
		rot.Files = append(rot.Files, c.File)
		targets = append(targets, target{Name: c.Name, Namespace: c.Namespace, File: c.File, Consumers: c.Consumers, Checksum: checksum(ccipher)})
	}
	rot.Workloads, rot.ManualRestarts, err = markConsumers(dir, targets)
	if err != nil {
		return nil, err
	}
	for _, w := range rot.Workloads {
		if !slices.Contains(rot.Edited, w.File) {
			rot.Edited = append(rot.Edited, w.File)
		}
	}
	sort.Strings(rot.Edited)
	return rot, nil
}

// SetValues is `hl secrets set`: it writes values a person was given
// elsewhere (a DNS provider's API token, a storage bucket's keys) into
// keys of the generated secret name of the working tree at dir, keeps
// its other keys (decrypted with identities), and updates its copies and
// the consumers' restart annotations as a rotation does. A copy's name
// sets its source. Keys the secret does not have are refused, so a typo
// never adds a key nothing reads.
func SetValues(dir, name string, set map[string]string, identities []age.Identity, opts Options) (*Rotation, error) {
	s, all, err := findSource(dir, name, opts)
	if err != nil {
		return nil, err
	}
	spec, err := s.Spec()
	if err != nil {
		return nil, err
	}
	var known []string
	for _, k := range spec.Keys {
		if k.Generator.Kind == KindLiteral {
			continue // not a credential: it comes from hl.yaml
		}
		known = append(known, k.Generator.Outputs(k.Name)...)
	}
	sort.Strings(known)
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("%s/%s has no key %q that can be set (it has: %v)", s.Namespace, s.Name, k, known)
		}
		if set[k] == "" {
			return nil, fmt.Errorf("%s/%s: empty value for %s", s.Namespace, s.Name, k)
		}
	}
	cipher, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.File)))
	if err != nil {
		return nil, err
	}
	plain, err := Decrypt(cipher, identities...)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s (its other keys are kept): %w", s.File, err)
	}
	ex, err := ReadSecret(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.File, err)
	}
	values := ex.Values
	for _, k := range keys {
		values[k] = set[k]
	}
	return writeValues(dir, s, spec, all, values, opts)
}

// RotateByName is `hl secrets rotate NAME`: rotate one secret of the
// working tree at dir (a copy's name rotates its source).
func RotateByName(dir, name string, opts Options) (*Rotation, error) {
	s, all, err := findSource(dir, name, opts)
	if err != nil {
		return nil, err
	}
	return RotateSecret(dir, s, all, opts)
}

// findSource scans the working tree at dir and finds the secret name
// (NAME, NAMESPACE/NAME or its file); a copy's name gives its source.
func findSource(dir, name string, opts Options) (Secret, []Secret, error) {
	all, err := Scan(dir, opts.now())
	if err != nil {
		return Secret{}, nil, err
	}
	s, err := Find(all, name)
	if err != nil {
		return Secret{}, nil, err
	}
	if s.CopyOf != "" {
		for _, src := range all {
			if src.File == s.CopyOf {
				s = src
			}
		}
	}
	return s, all, nil
}

func writeEncrypted(dir string, s Secret, plain []byte, recipients []string) ([]byte, error) {
	if recipients == nil {
		recipients = s.Recipients
	}
	cipher, err := Encrypt(plain, recipients)
	if err != nil {
		return nil, fmt.Errorf("encrypt %s: %w", s.File, err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(s.File)), cipher, 0o644); err != nil {
		return nil, err
	}
	return cipher, nil
}

// checksum is what the consumers' annotation carries: the SHA-256 of the
// new ciphertext (public anyway), so it changes with every rotation and
// says nothing about the values.
func checksum(cipher []byte) string {
	h := sha256.Sum256(cipher)
	return hex.EncodeToString(h[:])
}

// KeyChange is what a recipients update or data-key rotation rewrote.
type KeyChange struct {
	Files []string `json:"files"`
	// SopsConfig is true when .sops.yaml was rewritten.
	SopsConfig bool `json:"sopsConfig"`
}

// RecipientsOutdated lists the SOPS files not encrypted for exactly want,
// and whether .sops.yaml differs from the config for want.
func RecipientsOutdated(dir string, all []Secret, want []string) (files []string, sopsConfig bool) {
	w := slices.Clone(want)
	sort.Strings(w)
	w = slices.Compact(w)
	for _, s := range all {
		have := slices.Clone(s.Recipients)
		sort.Strings(have)
		if !slices.Equal(have, w) {
			files = append(files, s.File)
		}
	}
	cur, err := os.ReadFile(filepath.Join(dir, ".sops.yaml"))
	sopsConfig = err != nil || !sameBytes(cur, SopsConfig(want))
	return files, sopsConfig
}

// UpdateRecipients re-encrypts every SOPS file of dir for want
// (updatekeys) under a fresh data key (rotate: a removed recipient that
// saw the old data key learns nothing from the new files), and rewrites
// .sops.yaml. identities must decrypt the current files.
func UpdateRecipients(dir string, all []Secret, want []string, identities []age.Identity) (*KeyChange, error) {
	_, cfg := RecipientsOutdated(dir, all, want)
	ch := &KeyChange{}
	// Every file gets a new data key, not only the outdated ones.
	for _, s := range all {
		if err := rewrite(dir, s.File, func(b []byte) ([]byte, error) { return Rotate(b, want, identities...) }); err != nil {
			return nil, err
		}
		ch.Files = append(ch.Files, s.File)
	}
	if cfg {
		if err := os.WriteFile(filepath.Join(dir, ".sops.yaml"), SopsConfig(want), 0o644); err != nil {
			return nil, err
		}
		ch.SopsConfig = true
	}
	return ch, nil
}

// DataKeysDue lists the files whose data key (sops lastmodified) is older
// than every.
func DataKeysDue(all []Secret, every time.Duration, now time.Time) []string {
	var out []string
	for _, s := range all {
		if every > 0 && !s.LastModified.IsZero() && !now.Before(s.LastModified.Add(every)) {
			out = append(out, s.File)
		}
	}
	return out
}

// RotateDataKeys re-encrypts the given files with a fresh data key for
// their current recipients (sops rotate: same values).
func RotateDataKeys(dir string, files []string, identities []age.Identity) (*KeyChange, error) {
	ch := &KeyChange{}
	for _, f := range files {
		if err := rewrite(dir, f, func(b []byte) ([]byte, error) { return Rotate(b, nil, identities...) }); err != nil {
			return nil, err
		}
		ch.Files = append(ch.Files, f)
	}
	return ch, nil
}

func rewrite(dir, f string, fn func([]byte) ([]byte, error)) error {
	full := filepath.Join(dir, filepath.FromSlash(f))
	b, err := os.ReadFile(full)
	if err != nil {
		return err
	}
	nb, err := fn(b)
	if err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	return os.WriteFile(full, nb, 0o644)
}
