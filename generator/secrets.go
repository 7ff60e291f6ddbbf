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
	var jobs []*File
	var seeds [][32]byte
	for _, p := range plan.Paths() {
		if f := plan.Files[p]; f.Secret != nil {
			var seed [32]byte
			if _, err := io.ReadFull(opts.Rand, seed[:]); err != nil {
				return fmt.Errorf("entropy: %w", err)
			}
			jobs = append(jobs, f)
			seeds = append(seeds, seed)
		}
	}
	outcomes := make([]secretOutcome, len(jobs))
	warnings := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, f := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			outcomes[i], warnings[i], errs[i] = resolveSecret(f, opts, want, today, rand.NewChaCha8(seeds[i]))
		}()
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

func resolveSecret(f *File, opts Options, want []string, today string, r io.Reader) (secretOutcome, string, error) {
	p := f.Path
	existing, err := os.ReadFile(filepath.Join(opts.OutDir, filepath.FromSlash(p)))
	if errors.Is(err, os.ErrNotExist) {
		plain, err := secrets.Render(f.Secret.Spec, nil, today, r)
		if err != nil {
			return 0, "", fmt.Errorf("generate %s: %w", p, err)
		}
		if f.Content, err = secrets.Encrypt(plain, want); err != nil {
			return 0, "", fmt.Errorf("encrypt %s: %w", p, err)
		}
		return secretGenerated, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	have, err := secrets.Recipients(existing)
	if err != nil {
		return 0, "", fmt.Errorf("%s is not a SOPS file hl can read: %w (nothing written)", p, err)
	}
	sort.Strings(have)
	sameRecipients := slices.Equal(have, want)
	if len(opts.Identities) == 0 {
		f.Content = existing
		warn := ""
		if !sameRecipients {
			warn = fmt.Sprintf("%s is encrypted for other recipients than spec.secrets.ageRecipients; give an age identity (SOPS_AGE_KEY_FILE or --age-key) to re-encrypt it", p)
		}
		return secretUnchecked, warn, nil
	}
	oldPlain, err := secrets.Decrypt(existing, opts.Identities...)
	if err != nil {
		return 0, "", fmt.Errorf("decrypt %s: %w (nothing written)", p, err)
	}
	newPlain, err := secrets.Render(f.Secret.Spec, oldPlain, today, r)
	if err != nil {
		return 0, "", fmt.Errorf("render %s: %w", p, err)
	}
	equal, err := secrets.PlainEqual(existing, newPlain, opts.Identities...)
	if err != nil {
		return 0, "", fmt.Errorf("compare %s: %w", p, err)
	}
	switch {
	case equal && sameRecipients:
		f.Content = existing
		return secretKept, "", nil
	case equal:
		if f.Content, err = secrets.UpdateKeys(existing, want, opts.Identities...); err != nil {
			return 0, "", fmt.Errorf("re-encrypt %s: %w", p, err)
		}
		return secretReencrypted, "", nil
	}
	if f.Content, err = secrets.Encrypt(newPlain, want); err != nil {
		return 0, "", fmt.Errorf("encrypt %s: %w", p, err)
	}
	return secretGenerated, "", nil
}
