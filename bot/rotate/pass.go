package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"hl.dev/hl/bot/forge"
	"hl.dev/hl/internal/secrets"
)

// Branch names. They carry namespace and name only, never values.
const (
	BranchPrefix     = "hl/rotate/"
	RecipientsBranch = "hl/rotate/recipients"
	DataKeysBranch   = "hl/rotate/data-keys"
	Label            = "hl/secret-rotation"
)

// PassOptions configure one rotation pass against a forge.
type PassOptions struct {
	Forge forge.Forge
	// Identities decrypt the current files (recipient change, data keys).
	// Value rotation does not need them.
	Identities []age.Identity
	Now        func() time.Time
	Rand       io.Reader
	Logger     *slog.Logger
	// DryRun computes and logs what would be opened, and opens nothing.
	DryRun bool
	// WorkDir is where the repo is cloned (a temp dir when "").
	WorkDir string
	// AuthorName, AuthorEmail sign the commits (hl-bot <bot@hl.dev>).
	AuthorName, AuthorEmail string
}

// Report is what a pass did.
type Report struct {
	Secrets int `json:"secrets"`
	// Overdue counts generated secrets past their rotate-after date.
	Overdue int      `json:"overdue"`
	PRs     []string `json:"prs,omitempty"`    // URLs of PRs opened
	Issues  []string `json:"issues,omitempty"` // URLs of issues opened
	// Pending are changes skipped because a PR or issue is already open.
	Pending []string `json:"pending,omitempty"`
	// Held are rotations postponed until the recipient change is merged.
	Held []string `json:"held,omitempty"`
	// Declined are PRs a human closed without merging: that change is not
	// proposed again for one period (the secret's rotate-after, or
	// spec.bot.rotateDataKeys) after the close.
	Declined []string `json:"declined,omitempty"`
}

// Pass runs one rotation pass: clone the default branch; when the age
// recipients of hl.yaml differ from the files', open one re-encryption PR
// (value rotations wait for it, so new values are never encrypted for a
// removed recipient); else rotate data keys past spec.bot.rotateDataKeys
// in one PR; and open one PR per overdue rotatable secret (with its
// copies), one issue per overdue non-rotatable one. Nothing is opened
// twice: an open PR on the change's branch, or an open issue with the same
// title, is left alone.
func Pass(ctx context.Context, o PassOptions) (*Report, error) {
	if o.Forge == nil {
		return nil, errors.New("rotate: no forge")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AuthorName == "" {
		o.AuthorName, o.AuthorEmail = "hl-bot", "bot@hl.dev"
	}
	now := o.Now()
	base, err := o.Forge.DefaultBranch(ctx)
	if err != nil {
		return nil, fmt.Errorf("default branch: %w", err)
	}
	dir := o.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "hl-rotate-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL: o.Forge.CloneURL(), Auth: o.Forge.Auth(),
		ReferenceName: plumbing.NewBranchReferenceName(base), SingleBranch: true,
	})
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, err
	}
	g := &gitOps{repo: repo, dir: dir, base: head.Hash(), o: o}

	all, err := Scan(ctx, dir, now)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	for _, s := range all {
		if s.Generated {
			rep.Secrets++
			if s.Due && s.CopyOf == "" {
				rep.Overdue++
			}
		}
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return rep, err
	}
	want := cfg.Spec.Secrets.AgeRecipients

	// 1. Recipient change.
	if outdated, sopsCfg := RecipientsOutdated(dir, all, want); len(outdated) > 0 || sopsCfg {
		log.Info("age recipients changed", "files", len(outdated), "sopsConfig", sopsCfg)
		title := "Re-encrypt secrets for the new age recipients"
		// Never snoozed: the files disagree with hl.yaml until this merges.
		_, err := g.propose(ctx, rep, RecipientsBranch, title, 0, func() ([]string, string, error) {
			ch, err := UpdateRecipients(dir, all, want, o.Identities)
			if err != nil {
				return nil, "", err
			}
			files := slices.Clone(ch.Files)
			if ch.SopsConfig {
				files = append(files, ".sops.yaml")
			}
			return files, recipientsBody(all, want, outdated), nil
		})
		if err != nil {
			return rep, err
		}
		for _, s := range all {
			if s.Due && s.Generated && s.CopyOf == "" {
				rep.Held = append(rep.Held, s.Namespace+"/"+s.Name)
			}
		}
		return rep, nil
	}

	// 2. Scheduled data-key rotation.
	if every, _ := cfg.Spec.Bot.RotateDataKeys.Parse(); every > 0 {
		if due := DataKeysDue(all, every, now); len(due) > 0 {
			title := "Rotate SOPS data keys"
			if _, err := g.propose(ctx, rep, DataKeysBranch, title, every, func() ([]string, string, error) {
				ch, err := RotateDataKeys(dir, due, o.Identities)
				if err != nil {
					return nil, "", err
				}
				return ch.Files, dataKeysBody(ch.Files, every), nil
			}); err != nil {
				return rep, err
			}
		}
	}

	// 3. Overdue values.
	var errs []error
	for _, s := range all {
		if !s.Generated || !s.Due || s.CopyOf != "" {
			continue
		}
		id := s.Namespace + "/" + s.Name
		if !s.Rotatable {
			if err := g.issue(ctx, rep, s); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
			}
			continue
		}
		title := fmt.Sprintf("Rotate secret %s", id)
		period, _ := secrets.ParseDuration(s.RotateAfter) // Scan parsed it already
		if _, err := g.propose(ctx, rep, BranchPrefix+s.Namespace+"-"+s.Name, title, period, func() ([]string, string, error) {
			rot, err := RotateSecret(dir, s, all, Options{Now: o.Now, Rand: o.Rand})
			if err != nil {
				return nil, "", err
			}
			log.Info("rotated secret", "secret", id, "files", len(rot.Files), "consumers", len(rot.Workloads))
			return append(slices.Clone(rot.Files), rot.Edited...), rotationBody(rot, now), nil
		}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	return rep, errors.Join(errs...)
}

type gitOps struct {
	repo *git.Repository
	dir  string
	base plumbing.Hash
	o    PassOptions
}

// propose makes change on a fresh branch from base, commits, pushes and
// opens a PR, unless a PR from that branch is already open, or a human
// closed one without merging less than snooze ago (a declined rotation is
// not pushed again every pass; it comes back after one period).
func (g *gitOps) propose(ctx context.Context, rep *Report, branch, title string, snooze time.Duration, change func() (files []string, body string, err error)) (bool, error) {
	log := g.o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := g.o.Forge.DefaultBranch(ctx)
	if err != nil {
		return false, err
	}
	if pr, err := g.o.Forge.FindPR(ctx, branch, base); err == nil && pr.State == forge.StateOpen {
		log.Info("rotation PR already open", "pr", pr.Number, "branch", branch)
		rep.Pending = append(rep.Pending, pr.URL)
		return false, nil
	} else if err == nil && pr.State == forge.StateClosed && snooze > 0 && declinedUntil(pr, snooze).After(g.o.Now()) {
		log.Info("rotation PR was closed without merging: not proposed again yet", "pr", pr.Number, "branch", branch, "until", declinedUntil(pr, snooze).Format(time.DateOnly))
		rep.Declined = append(rep.Declined, pr.URL)
		return false, nil
	} else if err != nil && !errors.Is(err, forge.ErrNotFound) {
		return false, err
	}
	wt, err := g.repo.Worktree()
	if err != nil {
		return false, err
	}
	ref := plumbing.NewBranchReferenceName(branch)
	if err := wt.Checkout(&git.CheckoutOptions{Hash: g.base, Branch: ref, Create: true, Force: true}); err != nil {
		// The branch exists locally from an earlier attempt: reset it.
		if err := g.repo.Storer.SetReference(plumbing.NewHashReference(ref, g.base)); err != nil {
			return false, err
		}
		if err := wt.Checkout(&git.CheckoutOptions{Branch: ref, Force: true}); err != nil {
			return false, err
		}
	}
	defer func() {
		_ = wt.Checkout(&git.CheckoutOptions{Hash: g.base, Force: true})
	}()
	files, body, err := change()
	if err != nil {
		return false, err
	}
	sort.Strings(files)
	files = slices.Compact(files)
	for _, f := range files {
		if _, err := wt.Add(f); err != nil {
			return false, err
		}
	}
	st, err := wt.Status()
	if err != nil {
		return false, err
	}
	if st.IsClean() {
		return false, nil
	}
	if g.o.DryRun {
		log.Info("dry run: would open PR", "title", title, "branch", branch, "files", len(files))
		return false, nil
	}
	sig := &object.Signature{Name: g.o.AuthorName, Email: g.o.AuthorEmail, When: time.Now()}
	if _, err := wt.Commit(title, &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		return false, err
	}
	err = g.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin", Auth: g.o.Forge.Auth(),
		RefSpecs: []gitconfig.RefSpec{gitconfig.RefSpec("+" + ref.String() + ":" + ref.String())},
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return false, fmt.Errorf("push %s: %w", branch, err)
	}
	pr, err := g.o.Forge.CreatePR(ctx, forge.NewPR{Title: title, Body: body, Head: branch, Base: base, Labels: []string{Label}})
	if err != nil {
		return false, fmt.Errorf("open PR: %w", err)
	}
	log.Info("opened PR", "pr", pr.Number, "url", pr.URL, "branch", branch)
	rep.PRs = append(rep.PRs, pr.URL)
	return true, nil
}

// declinedUntil is when a closed, unmerged PR stops holding its change
// back: one period after it was closed (after it was opened when the forge
// does not say when it was closed).
func declinedUntil(pr *forge.PR, period time.Duration) time.Time {
	at := pr.Closed
	if at.IsZero() {
		at = pr.Created
	}
	return at.Add(period)
}

// IssueTitle is the title of the issue for a non-rotatable secret.
func IssueTitle(s Secret) string {
	return fmt.Sprintf("Rotate secret %s/%s by hand", s.Namespace, s.Name)
}

func (g *gitOps) issue(ctx context.Context, rep *Report, s Secret) error {
	title := IssueTitle(s)
	if is, err := g.o.Forge.FindIssue(ctx, title); err == nil {
		rep.Pending = append(rep.Pending, is.URL)
		return nil
	} else if !errors.Is(err, forge.ErrNotFound) {
		return err
	}
	if g.o.DryRun {
		return nil
	}
	is, err := g.o.Forge.CreateIssue(ctx, title, issueBody(s, g.o.Now()))
	if err != nil {
		return err
	}
	rep.Issues = append(rep.Issues, is.URL)
	return nil
}

func overdueLine(s Secret, now time.Time) string {
	line := fmt.Sprintf("Its values were generated on %s and `%s` is %s, so it was due on %s", s.GeneratedAt, secrets.AnnotationRotateAfter, s.RotateAfter, s.DueAt)
	if due, err := time.Parse(secrets.DateLayout, s.DueAt); err == nil {
		days := int(now.Sub(due).Hours() / 24)
		line += fmt.Sprintf(" (%d days ago)", days)
	}
	return line + "."
}

func rotationBody(r *Rotation, now time.Time) string {
	s := r.Secret
	var b strings.Builder
	fmt.Fprintf(&b, "## Rotate secret `%s/%s`\n\n", s.Namespace, s.Name)
	fmt.Fprintf(&b, "**Why now:** %s\n\n", overdueLine(s, now))
	b.WriteString("**What changes:** new values from the same generator spec (kind, length, charset), encrypted with a fresh SOPS data key; `hl.dev/generated-at` is today.\n\n")
	for _, f := range r.Files {
		fmt.Fprintf(&b, "- `%s`\n", f)
	}
	if len(r.Files) > 1 {
		b.WriteString("\nThe copies carry the same new values as the secret.\n")
	}
	b.WriteString("\n**Consumers that will restart** (their `" + ChecksumAnnotationPrefix + "*` annotation changes):\n\n")
	if len(r.Workloads) == 0 {
		b.WriteString("- none found in the repo\n")
	}
	for _, w := range r.Workloads {
		fmt.Fprintf(&b, "- %s `%s` in `%s` (reads `%s`)\n", w.Kind, w.Name, w.File, w.Secret)
	}
	if len(r.ManualRestarts) > 0 {
		b.WriteString("\n**Restart by hand after the sync** (no annotation could be set for these declared consumers):\n\n")
		for _, c := range r.ManualRestarts {
			fmt.Fprintf(&b, "- `%s`\n", c)
		}
	}
	b.WriteString("\n**If something breaks:** revert this PR. The revert restores the old ciphertext (and the old annotations), Argo CD syncs the old values back and the consumers restart with them.\n")
	fmt.Fprintf(&b, "\n<!-- hl-rotate: %s/%s -->\n", s.Namespace, s.Name)
	return b.String()
}

func issueBody(s Secret, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The secret `%s/%s` (`%s`) is overdue for rotation. %s\n\n", s.Namespace, s.Name, s.File, overdueLine(s, now))
	fmt.Fprintf(&b, "It is marked `%s: \"false\"`: the value also lives inside the application (e.g. in its database), so changing it in git alone would break the app instead of rotating the credential. The bot therefore does not open a PR.\n\n", secrets.AnnotationRotatable)
	b.WriteString("**To rotate it by hand:**\n\n")
	b.WriteString("1. Change the credential inside the application first (its admin UI or CLI).\n")
	fmt.Fprintf(&b, "2. Put the same value into the repo: `sops edit %s` (set the new value, and `%s` to today's date), commit and push.\n", s.File, secrets.AnnotationGeneratedAt)
	if len(s.Consumers) > 0 {
		fmt.Fprintf(&b, "3. Restart the consumers once Argo CD synced: %s.\n", "`"+strings.Join(s.Consumers, "`, `")+"`")
	}
	b.WriteString("\nClose this issue when done; the bot opens a new one when the secret is due again.\n")
	fmt.Fprintf(&b, "\n<!-- hl-rotate: %s/%s -->\n", s.Namespace, s.Name)
	return b.String()
}

func recipientsBody(all []Secret, want, outdated []string) string {
	var b strings.Builder
	b.WriteString("## Re-encrypt secrets for the new age recipients\n\n")
	b.WriteString("`spec.secrets.ageRecipients` in hl.yaml changed. Every SOPS file is re-encrypted for exactly these recipients (`sops updatekeys`) under a fresh data key (`sops rotate`), so a removed key cannot read the new files; `.sops.yaml` follows hl.yaml.\n\nRecipients:\n\n")
	for _, r := range want {
		fmt.Fprintf(&b, "- `%s`\n", r)
	}
	fmt.Fprintf(&b, "\n%d of %d files were encrypted for another set. Values do not change; nothing restarts.\n\n", len(outdated), len(all))
	b.WriteString("A removed recipient can still read the old files in git history: rotate the secrets it could read if the key was compromised.\n\n")
	b.WriteString("**If something breaks:** revert this PR to restore the previous ciphertext.\n\nOverdue value rotations wait until this PR is merged.\n")
	return b.String()
}

func dataKeysBody(files []string, every time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Rotate SOPS data keys\n\n`spec.bot.rotateDataKeys` is %s: these files get a fresh data key (`sops rotate`). Values do not change; nothing restarts.\n\n", secrets.FormatDuration(every))
	for _, f := range files {
		fmt.Fprintf(&b, "- `%s`\n", f)
	}
	b.WriteString("\n**If something breaks:** revert this PR to restore the previous ciphertext.\n")
	return b.String()
}
