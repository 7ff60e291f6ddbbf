// Package engine is the bot's one way of changing a repository through a
// forge, shared by the upgrade pass (bot/run) and the rotation pass
// (bot/rotate): a clone of the base branch with the bot's branches
// fetched, commits built in memory on the base tip, one push for many
// branches (each pushed alone only when the forge refuses the batch), and
// the PR side — the bot's PRs listed once, a PR created or brought in line
// (title, body, labels).
//
// Everything the bot owns on a forge is named from here: every bot branch
// starts with BranchPrefix (the webhook of hl bot serve reacts to merges
// of exactly those), and every bot commit carries DefaultAuthor, which is
// how a branch a human pushed to is told apart from the bot's own.
//
// Commits are deterministic: a branch commit has the base tip's committer
// time plus one second and the bot's identity, so rebuilding the same
// edits on the same base gives the same hash and a re-run pushes nothing.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"hl.dev/hl/bot/forge"
)

// BranchPrefix starts every branch the bot owns: upgrades are
// hl-bot/<dependency>-<major>.x or hl-bot/group-<name>, rotations
// hl-bot/rotate/<namespace>-<name>.
const BranchPrefix = "hl-bot/"

// RotationPrefix starts the rotation pass's branches; every other bot
// branch is the upgrade pass's.
const RotationPrefix = BranchPrefix + "rotate/"

// DashboardMarker is the hidden line that marks the bot's dependency
// dashboard issue.
const DashboardMarker = "<!-- hl-bot-dashboard -->"

// IsBotBranch reports whether a branch (a name or a refs/heads/ ref) is
// one of the bot's.
func IsBotBranch(branch string) bool {
	return strings.HasPrefix(strings.TrimPrefix(branch, "refs/heads/"), BranchPrefix)
}

// Author is a commit identity.
type Author struct{ Name, Email string }

// DefaultAuthor signs every commit the bot makes.
var DefaultAuthor = Author{Name: "hl-bot", Email: "hl-bot@noreply.localhost"}

// Options open a Repo.
type Options struct {
	Forge forge.Forge
	// Base branch; "" asks the forge for its default branch.
	Base string
	// Dir is an existing clone whose origin is the forge; "" clones into
	// a temporary folder that Close removes.
	Dir string
	// Author signs the commits (DefaultAuthor when zero).
	Author Author
}

// Repo is a clone of the base branch with the bot's branches fetched. Its
// working tree is checked out at the base tip: passes read files from Dir.
type Repo struct {
	Forge  forge.Forge
	Base   string
	Dir    string
	Author Author
	// Tip is the base branch's commit.
	Tip *object.Commit

	git  *git.Repository
	auth transport.AuthMethod
	tmp  bool
}

// Open clones (or opens and fetches) the repository of o.Forge.
func Open(ctx context.Context, o Options) (*Repo, error) {
	if o.Forge == nil {
		return nil, errors.New("engine: no forge")
	}
	if o.Base == "" {
		b, err := o.Forge.DefaultBranch(ctx)
		if err != nil {
			return nil, fmt.Errorf("default branch: %w", err)
		}
		o.Base = b
	}
	r, err := OpenURL(ctx, o.Forge.CloneURL(), o.Forge.Auth(), o.Base, o.Dir)
	if err != nil {
		return nil, err
	}
	r.Forge = o.Forge
	if o.Author != (Author{}) {
		r.Author = o.Author
	}
	return r, nil
}

// OpenURL is Open for a git URL without a forge (the PR methods need one).
func OpenURL(ctx context.Context, url string, auth transport.AuthMethod, base, dir string) (_ *Repo, err error) {
	r := &Repo{Base: base, Dir: dir, Author: DefaultAuthor, auth: auth}
	if dir == "" {
		if r.Dir, err = os.MkdirTemp("", "hl-bot-"); err != nil {
			return nil, err
		}
		r.tmp = true
		defer func() {
			if err != nil {
				_ = os.RemoveAll(r.Dir)
			}
		}()
	}
	if r.git, err = openRepo(ctx, r.Dir, url, base, auth, r.tmp); err != nil {
		return nil, err
	}
	ref, err := r.git.Reference(plumbing.ReferenceName("refs/remotes/origin/"+base), true)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", base, err)
	}
	if r.Tip, err = r.git.CommitObject(ref.Hash()); err != nil {
		return nil, err
	}
	return r, nil
}

// Close removes a temporary clone.
func (r *Repo) Close() error {
	if r.tmp {
		return os.RemoveAll(r.Dir)
	}
	return nil
}

// ReadFile reads a file of the base tip (not of the working tree).
func (r *Repo) ReadFile(p string) ([]byte, error) { return readFile(r.Tip, p) }

// BranchTip is the commit a bot branch points at on the forge (as
// fetched), nil when there is none.
func (r *Repo) BranchTip(branch string) *object.Commit {
	ref, err := r.git.Reference(plumbing.ReferenceName("refs/remotes/origin/"+branch), true)
	if err != nil {
		return nil
	}
	c, err := r.git.CommitObject(ref.Hash())
	if err != nil {
		return nil
	}
	return c
}

// Human reports whether a branch tip was committed by someone other than
// the bot: such a branch is theirs and the bot leaves it alone.
func (r *Repo) Human(tip *object.Commit) bool {
	return tip != nil && tip.Author.Email != r.Author.Email
}

// Commit builds one commit on the base tip with files replaced (existing
// files only) and returns its hash; nothing is pushed.
func (r *Repo) Commit(files map[string][]byte, msg string) (plumbing.Hash, error) {
	return commitOn(r.git, r.Tip, files, msg, r.Author)
}

// Push force-pushes the heads in one push (each alone when the forge
// refuses the batch); errs[i] is heads[i]'s.
func (r *Repo) Push(ctx context.Context, heads []Head) []error {
	return pushBranches(ctx, r.git, r.auth, heads)
}

// BaseChanged reports which of files the base changed since tip's parent:
// a branch built on an older base that edits one of them must be rebuilt.
func (r *Repo) BaseChanged(tip *object.Commit, files []string) (bool, error) {
	if len(tip.ParentHashes) == 0 || tip.ParentHashes[0] == r.Tip.Hash {
		return false, nil
	}
	parent, err := r.git.CommitObject(tip.ParentHashes[0])
	if err != nil {
		return false, err
	}
	changed, err := changedFiles(parent, r.Tip)
	if err != nil {
		return false, err
	}
	for _, f := range files {
		if changed[f] {
			return true, nil
		}
	}
	return false, nil
}

// TakeEdits reads the files a pass edited in the working tree and resets
// the working tree to the base tip, so the next change starts from the
// base again. Files whose content equals the base are left out: an empty
// result means the edit changed nothing.
func (r *Repo) TakeEdits(files []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range files {
		now, err := os.ReadFile(filepath.Join(r.Dir, filepath.FromSlash(f)))
		if err != nil {
			_ = r.Reset()
			return nil, err
		}
		if was, err := r.ReadFile(f); err != nil || !slices.Equal(now, was) {
			out[f] = now
		}
	}
	return out, r.Reset()
}

// Reset puts the working tree back at the base tip (after an edit that
// failed halfway, too).
func (r *Repo) Reset() error {
	wt, err := r.git.Worktree()
	if err != nil {
		return err
	}
	return wt.Reset(&git.ResetOptions{Commit: r.Tip.Hash, Mode: git.HardReset})
}

// PRs lists every PR of a bot branch, in any state, oldest first.
func (r *Repo) PRs(ctx context.Context) ([]forge.PR, error) {
	return r.Forge.ListPRs(ctx, forge.ListOptions{HeadPrefix: BranchPrefix})
}

// History is the PRs of branch into the base, newest first.
func (r *Repo) History(prs []forge.PR, branch string) []forge.PR {
	var out []forge.PR
	for _, p := range prs {
		if p.Head == branch && p.Base == r.Base {
			out = append(out, p)
		}
	}
	slices.Reverse(out)
	return out
}

// EnsurePR opens a PR for want (open == nil) or brings the open one in
// line: title and body rewritten when they differ, missing labels added.
// It returns the PR and whether it was created.
func (r *Repo) EnsurePR(ctx context.Context, open *forge.PR, want forge.NewPR) (*forge.PR, bool, error) {
	if want.Base == "" {
		want.Base = r.Base
	}
	if open == nil {
		p, err := r.Forge.CreatePR(ctx, want)
		if err != nil {
			return nil, false, fmt.Errorf("open PR for %s: %w", want.Head, err)
		}
		return p, true, nil
	}
	if open.Title != want.Title || open.Body != want.Body {
		if err := r.Forge.UpdatePR(ctx, open.Number, want.Title, want.Body); err != nil {
			return nil, false, err
		}
		open.Title, open.Body = want.Title, want.Body
	}
	var missing []string
	for _, l := range want.Labels {
		if !slices.Contains(open.Labels, l) {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		if err := r.Forge.AddLabels(ctx, open.Number, missing); err != nil {
			return nil, false, err
		}
		open.Labels = append(open.Labels, missing...)
	}
	return open, false, nil
}
