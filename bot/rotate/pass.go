package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/forge"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/secrets"
)

// Branch names (under engine.RotationPrefix). They carry namespace and
// name only, never values.
const (
	RecipientsBranch = engine.RotationPrefix + "recipients"
	DataKeysBranch   = engine.RotationPrefix + "data-keys"
	Label            = "hl/secret-rotation"
)

// SecretBranch is the branch of one secret's rotation.
func SecretBranch(s secrets.Secret) string {
	return engine.RotationPrefix + s.Namespace + "-" + s.Name
}

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
// title, is left alone. Branches, commits, pushes and PRs go through the
// bot's one engine (bot/engine), as the upgrade pass's do.
func Pass(ctx context.Context, o PassOptions) (*Report, error) {
	if o.Forge == nil {
		return nil, errors.New("rotate: no forge")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	now := o.Now()
	repo, err := engine.Open(ctx, engine.Options{Forge: o.Forge})
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	dir := repo.Dir

	all, err := secrets.Scan(dir, now)
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
	doc, _, err := config.Load(filepath.Join(dir, config.FileName))
	if err != nil {
		return rep, err
	}
	cfg := doc.Homelab
	want := cfg.Spec.Secrets.AgeRecipients
	prs, err := repo.PRs(ctx)
	if err != nil {
		return rep, err
	}
	g := &proposer{repo: repo, prs: prs, o: o}

	// 1. Recipient change.
	if outdated, sopsCfg := secrets.RecipientsOutdated(dir, all, want); len(outdated) > 0 || sopsCfg {
		log.Info("age recipients changed", "files", len(outdated), "sopsConfig", sopsCfg)
		title := "Re-encrypt secrets for the new age recipients"
		// Never snoozed: the files disagree with hl.yaml until this merges.
		err := g.propose(ctx, rep, RecipientsBranch, title, 0, func() ([]string, string, error) {
			ch, err := secrets.UpdateRecipients(dir, all, want, o.Identities)
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
		if due := secrets.DataKeysDue(all, every, now); len(due) > 0 {
			title := "Rotate SOPS data keys"
			if err := g.propose(ctx, rep, DataKeysBranch, title, every, func() ([]string, string, error) {
				ch, err := secrets.RotateDataKeys(dir, due, o.Identities)
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
		if err := g.propose(ctx, rep, SecretBranch(s), title, period, func() ([]string, string, error) {
			rot, err := secrets.RotateSecret(dir, s, all, secrets.Options{Now: o.Now, Rand: o.Rand})
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

// proposer turns changes of the working tree into PRs through the engine.
type proposer struct {
	repo *engine.Repo
	prs  []forge.PR // the bot's PRs, listed once per pass
	o    PassOptions
}

// propose makes change in the working tree (from the base), takes the
// edited files into a commit on the base, pushes it to branch and opens a
// PR — unless a PR from that branch is open, or a human closed one without
// merging less than snooze ago (a declined rotation is not pushed again
// every pass; it comes back after one period).
func (g *proposer) propose(ctx context.Context, rep *Report, branch, title string, snooze time.Duration, change func() (files []string, body string, err error)) error {
	log := g.o.Logger
	if h := g.repo.History(g.prs, branch); len(h) > 0 {
		switch pr := h[0]; {
		case pr.State == forge.StateOpen:
			log.Info("rotation PR already open", "pr", pr.Number, "branch", branch)
			rep.Pending = append(rep.Pending, pr.URL)
			return nil
		case pr.State == forge.StateClosed && snooze > 0 && declinedUntil(&pr, snooze).After(g.o.Now()):
			log.Info("rotation PR was closed without merging: not proposed again yet", "pr", pr.Number, "branch", branch, "until", declinedUntil(&pr, snooze).Format(time.DateOnly))
			rep.Declined = append(rep.Declined, pr.URL)
			return nil
		}
	}
	files, body, err := change()
	if err != nil {
		_ = g.repo.Reset()
		return err
	}
	edits, err := g.repo.TakeEdits(files)
	if err != nil || len(edits) == 0 {
		return err
	}
	if g.o.DryRun {
		log.Info("dry run: would open PR", "title", title, "branch", branch, "files", len(edits))
		return nil
	}
	h, err := g.repo.Commit(edits, title)
	if err != nil {
		return err
	}
	if err := g.repo.Push(ctx, []engine.Head{{Branch: branch, Hash: h}})[0]; err != nil {
		return err
	}
	pr, _, err := g.repo.EnsurePR(ctx, nil, forge.NewPR{Title: title, Body: body, Head: branch, Labels: []string{Label}})
	if err != nil {
		return err
	}
	log.Info("opened PR", "pr", pr.Number, "url", pr.URL, "branch", branch)
	rep.PRs = append(rep.PRs, pr.URL)
	return nil
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
func IssueTitle(s secrets.Secret) string {
	return fmt.Sprintf("Rotate secret %s/%s by hand", s.Namespace, s.Name)
}

func (g *proposer) issue(ctx context.Context, rep *Report, s secrets.Secret) error {
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

func overdueLine(s secrets.Secret, now time.Time) string {
	line := fmt.Sprintf("Its values were generated on %s and `%s` is %s, so it was due on %s", s.GeneratedAt, secrets.AnnotationRotateAfter, s.RotateAfter, s.DueAt)
	if due, err := time.Parse(secrets.DateLayout, s.DueAt); err == nil {
		days := int(now.Sub(due).Hours() / 24)
		line += fmt.Sprintf(" (%d days ago)", days)
	}
	return line + "."
}

func rotationBody(r *secrets.Rotation, now time.Time) string {
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
	b.WriteString("\n**Consumers that will restart** (their `" + secrets.ChecksumAnnotationPrefix + "*` annotation changes):\n\n")
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

func issueBody(s secrets.Secret, now time.Time) string {
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

func recipientsBody(all []secrets.Secret, want, outdated []string) string {
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
