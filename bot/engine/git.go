package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"hl.dev/hl/internal/gitretry"
)

// botRefs are the remote-tracking refs of the bot's branches.
const botRefs = "refs/remotes/origin/" + BranchPrefix

func fetchSpecs(base string) []gitconfig.RefSpec {
	return []gitconfig.RefSpec{
		gitconfig.RefSpec("+refs/heads/" + base + ":refs/remotes/origin/" + base),
		gitconfig.RefSpec("+refs/heads/" + BranchPrefix + "*:" + botRefs + "*"),
	}
}

// openRepo clones url into dir (dir empty) or opens the clone at dir and
// fetches base and the bot's branches.
func openRepo(ctx context.Context, dir, url, base string, auth transport.AuthMethod, clone bool) (*git.Repository, error) {
	var r *git.Repository
	var err error
	if clone {
		err = gitretry.Do(ctx, func() error {
			r, err = git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
				URL: url, Auth: auth, ReferenceName: plumbing.NewBranchReferenceName(base), SingleBranch: true})
			if err != nil {
				// A clone cut short leaves a partial repository behind.
				if rerr := emptyDir(dir); rerr != nil {
					return rerr
				}
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("clone %s: %w", url, err)
		}
	} else if r, err = git.PlainOpen(dir); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	// Drop stale tracking refs of bot branches: a deleted remote branch must
	// not look alive.
	refs, _ := r.References()
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		if strings.HasPrefix(ref.Name().String(), botRefs) {
			_ = r.Storer.RemoveReference(ref.Name())
		}
		return nil
	})
	err = gitretry.Do(ctx, func() error {
		return r.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", Auth: auth, RefSpecs: fetchSpecs(base), Force: true, Prune: true})
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return r, nil
}

// emptyDir removes everything inside dir, keeping dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func readFile(c *object.Commit, p string) ([]byte, error) {
	f, err := c.File(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// writeTree returns tree with the files in changes (paths relative to
// tree) replaced; only existing files are rewritten.
func writeTree(s storer.EncodedObjectStorer, tree *object.Tree, changes map[string][]byte) (plumbing.Hash, error) {
	sub := map[string]map[string][]byte{}
	entries := make([]object.TreeEntry, len(tree.Entries))
	copy(entries, tree.Entries)
	done := map[string]bool{}
	for p, content := range changes {
		dir, rest, nested := strings.Cut(p, "/")
		if nested {
			if sub[dir] == nil {
				sub[dir] = map[string][]byte{}
			}
			sub[dir][rest] = content
			continue
		}
		for i, e := range entries {
			if e.Name == p && e.Mode.IsFile() {
				h, err := writeBlob(s, content)
				if err != nil {
					return plumbing.ZeroHash, err
				}
				entries[i].Hash = h
				done[p] = true
			}
		}
		if !done[p] {
			return plumbing.ZeroHash, fmt.Errorf("%s: not a file in the base tree", p)
		}
	}
	for dir, ch := range sub {
		found := false
		for i, e := range entries {
			if e.Name == dir && e.Mode == filemode.Dir {
				st, err := object.GetTree(s, e.Hash)
				if err != nil {
					return plumbing.ZeroHash, err
				}
				h, err := writeTree(s, st, ch)
				if err != nil {
					return plumbing.ZeroHash, fmt.Errorf("%s/%w", dir, err)
				}
				entries[i].Hash = h
				found = true
			}
		}
		if !found {
			return plumbing.ZeroHash, fmt.Errorf("%s: no such folder in the base tree", dir)
		}
	}
	nt := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := nt.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

func writeBlob(s storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := io.Copy(w, bytes.NewReader(content)); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

// commitOn writes one commit on parent with files replaced. Its time is
// the parent's committer time, so rebuilding the same edits on the same
// base gives the same hash (re-runs push nothing new).
func commitOn(r *git.Repository, parent *object.Commit, files map[string][]byte, msg string, who Author) (plumbing.Hash, error) {
	tree, err := parent.Tree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	th, err := writeTree(r.Storer, tree, files)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	when := parent.Committer.When.Add(time.Second)
	sig := object.Signature{Name: who.Name, Email: who.Email, When: when}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: th, ParentHashes: []plumbing.Hash{parent.Hash}}
	obj := r.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.Storer.SetEncodedObject(obj)
}

// Head is a branch to force-push and the commit it is to point at.
type Head struct {
	Branch string
	Hash   plumbing.Hash
}

// pushBranches force-pushes every head in one push: one receive-pack on
// the forge, whose git hooks then run once for all of them rather than
// once a branch. When that push fails, each head is pushed alone so that
// a branch the forge refuses fails by itself. errs[i] is heads[i]'s.
func pushBranches(ctx context.Context, r *git.Repository, auth transport.AuthMethod, heads []Head) []error {
	errs := make([]error, len(heads))
	if len(heads) == 1 {
		errs[0] = push(ctx, r, auth, heads...)
		return errs
	}
	if err := push(ctx, r, auth, heads...); err == nil || ctx.Err() != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for i, h := range heads {
		errs[i] = push(ctx, r, auth, h)
	}
	return errs
}

// push force-pushes the heads in one push and records them as the
// remote's branches.
func push(ctx context.Context, r *git.Repository, auth transport.AuthMethod, heads ...Head) error {
	var specs []gitconfig.RefSpec
	var names []string
	for _, h := range heads {
		local := plumbing.ReferenceName("refs/hl-bot/" + h.Branch)
		if err := r.Storer.SetReference(plumbing.NewHashReference(local, h.Hash)); err != nil {
			return err
		}
		specs = append(specs, gitconfig.RefSpec("+"+local.String()+":refs/heads/"+h.Branch))
		names = append(names, h.Branch)
	}
	// A force push of fixed commits: sending it again is harmless.
	err := gitretry.Do(ctx, func() error {
		return r.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: auth, Force: true, RefSpecs: specs})
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("push %s: %w", strings.Join(names, ", "), err)
	}
	for _, h := range heads {
		if err := r.Storer.SetReference(plumbing.NewHashReference(plumbing.ReferenceName("refs/remotes/origin/"+h.Branch), h.Hash)); err != nil {
			return err
		}
	}
	return nil
}

// changedFiles lists paths that differ between two commits.
func changedFiles(a, b *object.Commit) (map[string]bool, error) {
	ta, err := a.Tree()
	if err != nil {
		return nil, err
	}
	tb, err := b.Tree()
	if err != nil {
		return nil, err
	}
	ch, err := object.DiffTree(ta, tb)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range ch {
		out[path.Clean(c.From.Name)] = true
		out[path.Clean(c.To.Name)] = true
	}
	return out, nil
}
