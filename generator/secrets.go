package generator

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"

	"hl.dev/hl/internal/secrets"
)

// secretOutcome is what resolving one secret did.
type secretOutcome int

const (
	secretGenerated secretOutcome = iota
	secretKept
	secretReencrypted
	secretUnchecked
)

// resolveSecrets decides the ciphertext of every declared secret: reuse
// the file on disk byte for byte when its plaintext would not change,
// generate what is missing, re-encrypt when the recipients changed.
// Without identities existing files are kept untouched.
//
// Secrets are resolved in parallel (bcrypt and age dominate a first
// render). Each secret draws its own 32-byte seed from opts.Rand in path
// order first, so a seeded render stays byte-identical whatever the
// scheduling; the per-secret stream is ChaCha8, a cryptographically strong
// generator, seeded from crypto/rand in production.
func resolveSecrets(plan *Plan, opts Options, res *Result) error {
	today := opts.Now().UTC().Format(secrets.DateLayout)
	want := slices.Clone(plan.Recipients)
	sort.Strings(want)
	var sources, copies []*File
	var seeds [][32]byte
	for _, p := range plan.Paths() {
		f := plan.Files[p]
		switch {
		case f.Secret == nil:
		case f.Secret.ProvidedBy != "":
			existing, err := os.ReadFile(filepath.Join(opts.OutDir, filepath.FromSlash(p)))
			switch {
			case err == nil:
				f.Content = existing
			case errors.Is(err, os.ErrNotExist):
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s is written by %s and is not there yet: its app will wait for it", p, f.Secret.ProvidedBy))
			default:
				return err
			}
		case f.Secret.CopyOf != "":
			copies = append(copies, f)
		default:
			var seed [32]byte
			if _, err := io.ReadFull(opts.Rand, seed[:]); err != nil {
				return fmt.Errorf("entropy: %w", err)
			}
			sources = append(sources, f)
			seeds = append(seeds, seed)
		}
	}
	plains := map[string][]byte{}
	var mu sync.Mutex
	outcomes := make([]secretOutcome, len(sources)+len(copies))
	warnings := make([]string, len(outcomes))
	errs := make([]error, len(outcomes))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	run := func(i int, f *File, fn func() (secretOutcome, string, []byte, error)) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var plain []byte
			outcomes[i], warnings[i], plain, errs[i] = fn()
			mu.Lock()
			plains[f.Path] = plain
			mu.Unlock()
		}()
	}
	for i, f := range sources {
		run(i, f, func() (secretOutcome, string, []byte, error) {
			return resolveSecret(f, opts, want, today, rand.NewChaCha8(seeds[i]))
		})
	}
	wg.Wait()
	// Copies carry their source's values, so they go once sources are done.
	srcs := make([][]byte, len(copies)) // read before copy goroutines write plains
	for i, f := range copies {
		srcs[i] = plains[f.Secret.CopyOf]
	}
	for i, f := range copies {
		src := srcs[i]
		run(len(sources)+i, f, func() (secretOutcome, string, []byte, error) {
			return resolveCopy(f, src, opts, want)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, o := range outcomes {
		switch o {
		case secretGenerated:
			res.SecretsGenerated++
		case secretKept:
			res.SecretsKept++
		case secretReencrypted:
			res.SecretsReencrypted++
		case secretUnchecked:
			res.SecretsUnchecked++
		}
		if warnings[i] != "" {
			res.Warnings = append(res.Warnings, warnings[i])
		}
	}
	return nil
}

// resolveSecret decides one generated secret's ciphertext; it also returns
// the plaintext (nil when it could not be read without an identity).
func resolveSecret(f *File, opts Options, want []string, today string, r io.Reader) (secretOutcome, string, []byte, error) {
	return resolveWith(f, opts, want, func(oldPlain []byte) ([]byte, error) {
		return secrets.Render(f.Secret.Spec, oldPlain, today, r)
	})
}

// resolveCopy writes a copy of a source secret's values under another
// name; srcPlain is the source's plaintext.
func resolveCopy(f *File, srcPlain []byte, opts Options, want []string) (secretOutcome, string, []byte, error) {
	return resolveWith(f, opts, want, func([]byte) ([]byte, error) {
		if srcPlain == nil {
			return nil, errNoPlain
		}
		src, err := secrets.ReadSecret(srcPlain)
		if err != nil {
			return nil, err
		}
		vals := map[string]string{}
		for k, from := range f.Secret.KeyMap {
			vals[k] = src.Values[from]
		}
		return secrets.Manifest(f.Secret.Spec, vals, src.GeneratedAt)
	})
}

// errNoPlain: a copy's source could not be decrypted (no identity), so the
// copy is kept as it is.
var errNoPlain = errors.New("source values unavailable")

// resolveWith is the shared keep/re-encrypt/encrypt decision; render
// makes the new plaintext from the old one (nil when the file is new).
func resolveWith(f *File, opts Options, want []string, render func(oldPlain []byte) ([]byte, error)) (secretOutcome, string, []byte, error) {
	p := f.Path
	existing, err := os.ReadFile(filepath.Join(opts.OutDir, filepath.FromSlash(p)))
	if errors.Is(err, os.ErrNotExist) {
		plain, err := render(nil)
		if errors.Is(err, errNoPlain) {
			return 0, fmt.Sprintf("%s not generated: its source secret cannot be read without an age identity", p), nil, nil
		}
		if err != nil {
			return 0, "", nil, fmt.Errorf("generate %s: %w", p, err)
		}
		if f.Content, err = secrets.Encrypt(plain, want); err != nil {
			return 0, "", nil, fmt.Errorf("encrypt %s: %w", p, err)
		}
		return secretGenerated, "", plain, nil
	}
	if err != nil {
		return 0, "", nil, err
	}
	have, err := secrets.Recipients(existing)
	if err != nil {
		return 0, "", nil, fmt.Errorf("%s is not a SOPS file hl can read: %w (nothing written)", p, err)
	}
	sort.Strings(have)
	sameRecipients := slices.Equal(have, want)
	if len(opts.Identities) == 0 {
		f.Content = existing
		warn := ""
		if !sameRecipients {
			warn = fmt.Sprintf("%s is encrypted for other recipients than spec.secrets.ageRecipients; give an age identity (SOPS_AGE_KEY_FILE or --age-key) to re-encrypt it", p)
		}
		return secretUnchecked, warn, nil, nil
	}
	oldPlain, err := secrets.Decrypt(existing, opts.Identities...)
	if err != nil {
		return 0, "", nil, fmt.Errorf("decrypt %s: %w (nothing written)", p, err)
	}
	newPlain, err := render(oldPlain)
	if err != nil {
		return 0, "", nil, fmt.Errorf("render %s: %w", p, err)
	}
	equal, err := secrets.PlainTextEqual(oldPlain, newPlain)
	if err != nil {
		return 0, "", nil, fmt.Errorf("compare %s: %w", p, err)
	}
	switch {
	case equal && sameRecipients:
		f.Content = existing
		return secretKept, "", newPlain, nil
	case equal:
		if f.Content, err = secrets.UpdateKeys(existing, want, opts.Identities...); err != nil {
			return 0, "", nil, fmt.Errorf("re-encrypt %s: %w", p, err)
		}
		return secretReencrypted, "", newPlain, nil
	}
	if f.Content, err = secrets.Encrypt(newPlain, want); err != nil {
		return 0, "", nil, fmt.Errorf("encrypt %s: %w", p, err)
	}
	return secretGenerated, "", newPlain, nil
}
