package metal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ReadTreeAt reads the metal/ files of the repo at dir as of git revision
// rev (HEAD~1, a branch, a commit).
func ReadTreeAt(dir, rev string) (Tree, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	prefix := ""
	if wt, err := repo.Worktree(); err == nil {
		abs, _ := filepath.Abs(dir)
		if rel, err := filepath.Rel(wt.Filesystem.Root(), abs); err == nil && rel != "." {
			prefix = filepath.ToSlash(rel) + "/"
		}
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("git revision %q: %w (a shallow clone may lack it)", rev, err)
	}
	commit, err := repo.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("git revision %q: %w", rev, err)
	}
	root, err := commit.Tree()
	if err != nil {
		return nil, err
	}
	t := Tree{}
	sub, err := root.Tree(strings.TrimSuffix(prefix+metalDir, "/"))
	if errors.Is(err, object.ErrDirectoryNotFound) {
		return t, nil // no metal/ at that revision
	}
	if err != nil {
		return nil, err
	}
	err = sub.Files().ForEach(func(f *object.File) error {
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		t[metalDir+"/"+f.Name] = b
		return nil
	})
	return t, err
}
