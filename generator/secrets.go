package generator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"hl.dev/hl/internal/secrets"
)

// resolveSecrets decides the ciphertext of every declared secret: reuse
// the file on disk byte for byte when its plaintext would not change,
// generate what is missing, re-encrypt when the recipients changed.
// Without identities existing files are kept untouched.
func resolveSecrets(plan *Plan, opts Options, res *Result) error {
	today := opts.Now().UTC().Format(secrets.DateLayout)
	want := slices.Clone(plan.Recipients)
	sort.Strings(want)
	for _, p := range plan.Paths() {
		f := plan.Files[p]
		if f.Secret == nil {
			continue
		}
		existing, err := os.ReadFile(filepath.Join(opts.OutDir, filepath.FromSlash(p)))
		if errors.Is(err, os.ErrNotExist) {
			plain, err := secrets.Render(f.Secret.Spec, nil, today, opts.Rand)
			if err != nil {
				return fmt.Errorf("generate %s: %w", p, err)
			}
			if f.Content, err = secrets.Encrypt(plain, want); err != nil {
				return fmt.Errorf("encrypt %s: %w", p, err)
			}
			res.SecretsGenerated++
			continue
		}
		if err != nil {
			return err
		}
		have, err := secrets.Recipients(existing)
		if err != nil {
			return fmt.Errorf("%s is not a SOPS file hl can read: %w", p, err)
		}
		sort.Strings(have)
		sameRecipients := slices.Equal(have, want)
		if len(opts.Identities) == 0 {
			f.Content = existing
			res.SecretsUnchecked++
			if !sameRecipients {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s is encrypted for other recipients than spec.secrets.ageRecipients; give an age identity (SOPS_AGE_KEY_FILE or --age-key) to re-encrypt it", p))
			}
			continue
		}
		oldPlain, err := secrets.Decrypt(existing, opts.Identities...)
		if err != nil {
			return fmt.Errorf("decrypt %s: %w (nothing written)", p, err)
		}
		newPlain, err := secrets.Render(f.Secret.Spec, oldPlain, today, opts.Rand)
		if err != nil {
			return fmt.Errorf("render %s: %w", p, err)
		}
		equal, err := secrets.PlainEqual(existing, newPlain, opts.Identities...)
		if err != nil {
			return fmt.Errorf("compare %s: %w", p, err)
		}
		switch {
		case equal && sameRecipients:
			f.Content = existing
			res.SecretsKept++
		case equal:
			if f.Content, err = secrets.UpdateKeys(existing, want, opts.Identities...); err != nil {
				return fmt.Errorf("re-encrypt %s: %w", p, err)
			}
			res.SecretsReencrypted++
		default:
			if f.Content, err = secrets.Encrypt(newPlain, want); err != nil {
				return fmt.Errorf("encrypt %s: %w", p, err)
			}
			res.SecretsGenerated++
		}
	}
	return nil
}
