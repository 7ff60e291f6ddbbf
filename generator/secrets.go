package generator

import (
	"bytes"
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

	"hl.dev/hl/secrets"
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
		case f.Secret.Spec.CopyOf != "":
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
	// A pool of GOMAXPROCS workers takes the dearest secrets first (a
	// bcrypt hash costs more than everything else together), and a copy
	// becomes ready the moment its own source is done.
	type job struct {
		i   int
		f   *File
		run func() (secretOutcome, string, []byte, error)
	}
	n := len(sources) + len(copies)
	outcomes := make([]secretOutcome, n)
	warnings := make([]string, n)
	errs := make([]error, n)
	plains := make(map[string][]byte, n)
	isSource := make(map[string]bool, len(sources))
	for _, f := range sources {
		isSource[f.Path] = true
	}
	copiesOf := map[string][]int{}
	queued := len(sources)
	for i, f := range copies {
		if !isSource[f.Secret.Spec.CopyOf] {
			errs[len(sources)+i] = fmt.Errorf("%s: copy of %s, which is not a generated secret", f.Path, f.Secret.Spec.CopyOf)
			continue
		}
		copiesOf[f.Secret.Spec.CopyOf] = append(copiesOf[f.Secret.Spec.CopyOf], i)
		queued++
	}
	order := make([]int, len(sources))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return work(sources[order[a]]) > work(sources[order[b]]) })
	jobs := make(chan job, n)
	for _, i := range order {
		f, seed := sources[i], seeds[i]
		jobs <- job{i, f, func() (secretOutcome, string, []byte, error) {
			return resolveSecret(f, opts, want, today, rand.NewChaCha8(seed))
		}}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(queued)
	for range min(runtime.GOMAXPROCS(0), max(queued, 1)) {
		go func() {
			for j := range jobs {
				var plain []byte
				outcomes[j.i], warnings[j.i], plain, errs[j.i] = j.run()
				mu.Lock()
				plains[j.f.Path] = plain
				for _, c := range copiesOf[j.f.Path] {
					f, src := copies[c], plain
					jobs <- job{len(sources) + c, f, func() (secretOutcome, string, []byte, error) {
						return resolveCopy(f, src, opts, want)
					}}
				}
				mu.Unlock()
				wg.Done()
			}
		}()
	}
	wg.Wait()
	close(jobs)
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

// sameSet reports whether recipients have holds exactly want (sorted).
func sameSet(have, want []string) bool {
	have = slices.Clone(have)
	sort.Strings(have)
	return slices.Equal(have, want)
}

// work estimates what resolving a secret costs, to start the dearest
// first: a bcrypt hash costs 2^cost rounds, everything else is cheap.
func work(f *File) int {
	w := 1
	for _, k := range f.Secret.Spec.Keys {
		if k.Generator.Kind == secrets.KindBcrypt {
			c := k.Generator.Cost
			if c == 0 {
				c = secrets.DefaultBcryptCost
			}
			w += 1 << c
		}
	}
	return w
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
		for k, from := range f.Secret.Spec.CopyKeys {
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
	unreadable := func(err error) error {
		return fmt.Errorf("%s is not a SOPS file hl can read: %w (nothing written)", p, err)
	}
	if len(opts.Identities) == 0 {
		have, err := secrets.Recipients(existing)
		if err != nil {
			return 0, "", nil, unreadable(err)
		}
		f.Content = existing
		warn := ""
		if !sameSet(have, want) {
			warn = fmt.Sprintf("%s is encrypted for other recipients than spec.secrets.ageRecipients; give an age identity (SOPS_AGE_KEY_FILE or --age-key) to re-encrypt it", p)
		}
		return secretUnchecked, warn, nil, nil
	}
	oldPlain, have, err := secrets.DecryptRecipients(existing, opts.Identities...)
	if errors.Is(err, secrets.ErrNotEncrypted) {
		return 0, "", nil, unreadable(err)
	}
	if err != nil {
		return 0, "", nil, fmt.Errorf("decrypt %s: %w (nothing written)", p, err)
	}
	sameRecipients := sameSet(have, want)
	newPlain, err := render(oldPlain)
	if err != nil {
		return 0, "", nil, fmt.Errorf("render %s: %w", p, err)
	}
	// Same bytes is the common case (a re-render); otherwise compare as
	// documents, so formatting alone never re-encrypts.
	equal := bytes.Equal(oldPlain, newPlain)
	if !equal {
		if equal, err = secrets.PlainTextEqual(oldPlain, newPlain); err != nil {
			return 0, "", nil, fmt.Errorf("compare %s: %w", p, err)
		}
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
