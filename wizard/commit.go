package wizard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/fsutil"
	"hl.dev/hl/secrets"
)

// readIdentity loads an existing identity file and its X25519 recipient.
func readIdentity(p string) (*Identity, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return nil, errors.New("an age identity file is required")
	}
	ids, err := secrets.LoadIdentities(p)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			return &Identity{Path: p, Recipient: x.Recipient().String()}, nil
		}
	}
	return nil, fmt.Errorf("%s holds no X25519 age identity (AGE-SECRET-KEY-1...); spec.secrets.ageRecipients takes only X25519 recipients", p)
}

// newIdentity generates an identity in memory; commit writes it.
func newIdentity(p string) (*Identity, error) {
	if p == "" {
		return nil, errors.New("no config dir to keep the age identity in: pass --age-key FILE")
	}
	var buf bytes.Buffer
	rcpt, err := secrets.GenerateIdentity(&buf)
	if err != nil {
		return nil, err
	}
	return &Identity{Path: p, Recipient: rcpt, New: buf.Bytes()}, nil
}

// writeIdentity creates the identity file (0600, folders 0700) and
// refuses to replace an existing one: losing an identity loses every
// secret encrypted only for it.
func writeIdentity(id *Identity) error {
	if err := os.MkdirAll(filepath.Dir(id.Path), 0o700); err != nil {
		return fmt.Errorf("creating directory for age identity: %w", err)
	}
	f, err := os.OpenFile(id.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("refusing to overwrite existing age identity file %s (it appeared while hl init ran)", id.Path)
	}
	if err != nil {
		return fmt.Errorf("creating age identity file: %w", err)
	}
	_, werr := f.Write(id.New)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(id.Path)
		return fmt.Errorf("writing age identity file: %w", werr)
	}
	return nil
}

// defaultIdentity picks the identity without asking: the existing file at
// the key path (reused, never overwritten), else the file's own
// recipients when it has real ones, else a new identity. The example's
// public test key is always dropped.
func (w *wizard) defaultIdentity() error {
	a := w.a
	a.Recipients = slices.Clone(a.baseRecipients)
	switch {
	case w.keyPath != "" && fileExists(w.keyPath):
		id, err := readIdentity(w.keyPath)
		if err != nil {
			return err
		}
		a.Identity = id
		fmt.Fprintf(w.out, "reusing the existing age identity %s (hl never overwrites it)\n", id.Path)
	case len(a.Recipients) > 0 && w.opts.AgeKey == "":
		return nil
	default:
		id, err := newIdentity(w.keyPath)
		if err != nil {
			return err
		}
		a.Identity = id
	}
	a.Recipients = withRecipient(a.Recipients, a.Identity.Recipient)
	return nil
}

// commit applies the answers to the source document's node tree in place,
// writes the identity and hl.yaml, renders, and prints the next steps.
func (w *wizard) commit(ctx context.Context, target string) (*InitResult, error) {
	root := w.src.doc.Root
	apply(root, w.a)
	data, err := encode(root)
	if err != nil {
		return nil, err
	}
	doc, probs := config.Parse(target, data)
	res := &InitResult{Path: target, Problems: probs, Identity: w.a.Identity, Homelab: doc.Homelab}
	if w.opts.Defaults && len(probs.Errors()) > 0 {
		return res, &InvalidError{Problems: probs}
	}
	if id := w.a.Identity; id != nil && id.New != nil {
		if err := writeIdentity(id); err != nil {
			return res, err
		}
		fmt.Fprintf(w.out, "wrote age identity %s (recipient %s): back it up and keep it out of git; it decrypts every secret\n", id.Path, id.Recipient)
	}
	if err := os.MkdirAll(w.opts.Dir, 0o755); err != nil {
		return res, err
	}
	if err := fsutil.WriteFileAtomic(target, data, 0o644); err != nil {
		return res, err
	}
	res.Written = true
	fmt.Fprintf(w.out, "wrote %s\n", target)
	for _, p := range probs {
		fmt.Fprintln(w.opts.ErrOut, p.String())
	}
	if len(probs.Errors()) > 0 {
		fmt.Fprintf(w.out, "not rendering: %s has errors; fix them (hl init or by hand), then run hl render\n", target)
		return res, nil
	}
	if w.opts.NoRender {
		return res, nil
	}
	ids, err := w.render(ctx, target, res)
	if err != nil {
		return res, err
	}
	h := doc.Homelab
	if err := w.writeCredentials(w.opts.Dir, h, ids); err != nil {
		return res, err
	}
	if err := w.writePasswords(w.opts.Dir, h, ids); err != nil {
		return res, err
	}
	if w.opts.Bootstrap && h.Spec.Forge.Type != config.ForgeGitea {
		fmt.Fprintf(w.out, "bootstrap: hl bootstraps Gitea only; push %s to %s yourself\n", w.opts.Dir, h.Spec.Forge.URL)
	}
	if (w.a.Bootstrap || w.opts.Bootstrap) && h.Spec.Forge.Type == config.ForgeGitea {
		if hook := w.opts.BootstrapGitea; hook != nil {
			if err := hook(ctx, w.opts.Dir, h); err != nil {
				return res, err
			}
		} else {
			fmt.Fprintln(w.out, "bootstrap: run hl bootstrap gitea")
		}
	}
	w.nextSteps(h)
	return res, nil
}

// render renders the repo with the identity, so later renders can
// decrypt and reuse the secrets generated now.
func (w *wizard) render(ctx context.Context, target string, res *InitResult) ([]age.Identity, error) {
	var ids []age.Identity
	var err error
	switch id := w.a.Identity; {
	case id != nil && id.New != nil:
		ids, err = secrets.ParseIdentities(id.New)
	case id != nil:
		ids, err = secrets.LoadIdentities(id.Path)
	case w.opts.AgeKey != "":
		ids, err = secrets.LoadIdentities(w.opts.AgeKey)
	default:
		ids, err = secrets.LoadIdentities("")
		if errors.Is(err, secrets.ErrNoIdentities) {
			ids, err = nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	dir := w.opts.Dir
	fmt.Fprintf(w.out, "rendering the repo into %s ...\n", dir)
	r, err := generator.Render(ctx, generator.Options{ConfigPath: target, OutDir: dir, Identities: ids})
	if r != nil {
		counts := map[generator.Action]int{}
		for _, f := range r.Files {
			counts[f.Action]++
		}
		for _, f := range r.Conflicts() {
			fmt.Fprintf(w.opts.ErrOut, "conflict %s: %s\n", f.Path, f.Note)
		}
		for _, warn := range r.Warnings {
			fmt.Fprintln(w.opts.ErrOut, "warning:", warn)
		}
		if r.Written {
			res.Rendered = true
			fmt.Fprintf(w.out, "rendered %s: %d added, %d updated, %d deleted, %d unchanged, %d kept; secrets: %d generated, %d kept\n",
				dir, counts[generator.ActionAdd], counts[generator.ActionUpdate], counts[generator.ActionDelete],
				counts[generator.ActionUnchanged], counts[generator.ActionKeep], r.SecretsGenerated, r.SecretsKept)
		}
	}
	return ids, err
}

// nextSteps prints at most three steps (issue 19): the nodes' boot order,
// hl up (which does every day-one command in order and resumes), and
// where day two is written down. The repo's README.md quick start says
// the same; cmd/hl's tests hold both to the commands hl has.
func (w *wizard) nextSteps(h *config.Homelab) {
	s := &h.Spec
	var names []string
	for _, n := range s.Metal.Nodes {
		names = append(names, n.Name)
	}
	var b strings.Builder
	b.WriteString("\nNext steps, in this order:\n")
	fmt.Fprintf(&b, "  1. Set %s to boot from the network first (then from disk).\n", strings.Join(names, ", "))
	fmt.Fprintf(&b, "  2. On %s, in %s: hl up, then power the nodes on. It installs %s %s and k3s,\n     bootstraps the cluster and waits until Argo CD has synced everything; re-run it if it stops.\n",
		s.Metal.PXE.Address, w.opts.Dir, s.Metal.OS.Name, s.Metal.OS.Version)
	fmt.Fprintf(&b, "  3. Optional: read %s (upgrades, adding a node or an app, restores).\n", filepath.Join(w.opts.Dir, "docs", "day-two.md"))
	fmt.Fprint(w.out, b.String())
}
