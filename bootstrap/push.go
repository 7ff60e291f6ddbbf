package bootstrap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"hl.dev/hl/internal/gitretry"
	"hl.dev/hl/internal/version"
)

// ErrPlaintextKey is returned (wrapped) when a file about to be pushed
// holds an unencrypted private key; nothing is pushed.
var ErrPlaintextKey = errors.New("unencrypted private key")

// localTree is Dir as a git tree in memory: the objects of the commit
// bootstrap pushes. Dir's own .git (if any) is neither read nor changed.
type localTree struct {
	st    *memory.Storage
	hash  plumbing.Hash
	root  []object.TreeEntry
	files int
}

// sameRoot compares the root entries of a tree Gitea lists.
func (t *localTree) sameRoot(remote *gitea.GitTreeResponse) bool {
	if remote.Truncated || len(remote.Entries) != len(t.root) {
		return false
	}
	want := map[string]object.TreeEntry{}
	for _, e := range t.root {
		want[e.Name] = e
	}
	for _, e := range remote.Entries {
		w, ok := want[e.Path]
		mode, err := strconv.ParseUint(e.Mode, 8, 32)
		if !ok || err != nil || w.Hash.String() != e.SHA || uint32(w.Mode) != uint32(mode) {
			return false
		}
	}
	return true
}

// privateKeyRE finds key material that must never reach the forge in the
// clear; SOPS values are ENC[...] and never match.
var privateKeyRE = regexp.MustCompile(`AGE-SECRET-KEY-1[0-9A-Z]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY-----`)

type treeNode struct {
	files map[string]object.TreeEntry
	dirs  map[string]*treeNode
}

func newTreeNode() *treeNode {
	return &treeNode{files: map[string]object.TreeEntry{}, dirs: map[string]*treeNode{}}
}

// buildTree stores every file of dir that git would track (.git skipped,
// .gitignore and .git/info/exclude honoured) as blobs and trees.
func buildTree(dir string) (*localTree, error) {
	t := &localTree{st: memory.NewStorage()}
	root := newTreeNode()
	patterns, err := readIgnore(filepath.Join(dir, ".git", "info", "exclude"), nil)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			more, err := readIgnore(filepath.Join(p, ".gitignore"), nil)
			patterns = append(patterns, more...)
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if d.IsDir() {
			if d.Name() == ".git" || gitignore.NewMatcher(patterns).Match(parts, true) {
				return filepath.SkipDir
			}
			more, err := readIgnore(filepath.Join(p, ".gitignore"), parts)
			patterns = append(patterns, more...)
			return err
		}
		if gitignore.NewMatcher(patterns).Match(parts, false) {
			return nil
		}
		var (
			content []byte
			mode    filemode.FileMode
		)
		switch typ := d.Type(); {
		case typ&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			content, mode = []byte(filepath.ToSlash(target)), filemode.Symlink
		case typ.IsRegular():
			if content, err = os.ReadFile(p); err != nil {
				return err
			}
			mode = filemode.Regular
			if fi, err := d.Info(); err == nil && fi.Mode()&0o111 != 0 {
				mode = filemode.Executable
			}
			if privateKeyRE.Match(content) {
				return fmt.Errorf("%w in %s: refusing to push it (encrypt it with sops or add it to .gitignore)", ErrPlaintextKey, filepath.ToSlash(rel))
			}
		default:
			return nil // sockets, devices: git cannot track them either
		}
		h, err := t.store(plumbing.BlobObject, content)
		if err != nil {
			return err
		}
		n := root
		for _, dn := range parts[:len(parts)-1] {
			if n.dirs[dn] == nil {
				n.dirs[dn] = newTreeNode()
			}
			n = n.dirs[dn]
		}
		name := parts[len(parts)-1]
		n.files[name] = object.TreeEntry{Name: name, Mode: mode, Hash: h}
		t.files++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	if t.hash, t.root, err = t.writeTree(root); err != nil {
		return nil, err
	}
	return t, nil
}

func readIgnore(path string, domain []string) ([]gitignore.Pattern, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := sc.Text(); !strings.HasPrefix(s, "#") && strings.TrimSpace(s) != "" {
			ps = append(ps, gitignore.ParsePattern(s, domain))
		}
	}
	return ps, sc.Err()
}

func (t *localTree) store(typ plumbing.ObjectType, content []byte) (plumbing.Hash, error) {
	obj := t.st.NewEncodedObject()
	obj.SetType(typ)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return t.st.SetEncodedObject(obj)
}

// writeTree stores n and its subtrees and returns n's entries (none: git
// does not record empty folders).
func (t *localTree) writeTree(n *treeNode) (h plumbing.Hash, entries []object.TreeEntry, err error) {
	for name, sub := range n.dirs {
		sh, subEntries, err := t.writeTree(sub)
		if err != nil {
			return h, nil, err
		}
		if len(subEntries) > 0 {
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: sh})
		}
	}
	for _, e := range n.files {
		entries = append(entries, e)
	}
	// Git orders tree entries by name, a folder's name compared as if it
	// ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	obj := t.st.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return h, nil, err
	}
	h, err = t.st.SetEncodedObject(obj)
	return h, entries, err
}

func (r *runner) cloneURL() string {
	return r.apiURL + "/" + r.forge.Owner + "/" + r.forge.Repo + ".git"
}

// commitMessage says what rendered the tree.
func (r *runner) commitMessage() string {
	return fmt.Sprintf("Render homelab %s with hl %s\n\nThe repository as rendered from hl.yaml by hl %s (hl render), with the\nforge credentials added by hl bootstrap gitea (SOPS-encrypted).\n",
		r.h.Metadata.Name, version.Get(), version.Get())
}

func (r *runner) pushStep() step {
	owner, name, branch := r.forge.Owner, r.forge.Repo, r.forge.DefaultBranch
	return step{
		name: "push",
		check: func(ctx context.Context) (bool, string, error) {
			t, err := buildTree(r.opts.Dir)
			if err != nil {
				return false, "", err
			}
			r.tree = t
			plan := fmt.Sprintf("push %d files as the first commit of %s", t.files, branch)
			if r.repo == nil {
				return false, plan, nil
			}
			b, resp, err := r.api.GetRepoBranch(owner, name, branch)
			if statusOf(resp) >= 500 {
				// A push cut short (a killed run) leaves the branch in git
				// while Gitea still flags the repository empty, and Gitea
				// answers 500 for the branch until it has caught up.
				if werr := r.waitNotEmpty(ctx); werr != nil {
					return false, "", werr
				}
				b, resp, err = r.api.GetRepoBranch(owner, name, branch)
			}
			switch {
			case statusOf(resp) == http.StatusNotFound:
				return false, plan, nil
			case err != nil:
				return false, "", apiErr("get branch "+branch, resp, err)
			}
			// The commit's root entries (name, mode, object hash) equal
			// Dir's exactly when the whole trees are equal.
			tree, resp, err := r.api.GetTrees(owner, name, gitea.ListTreeOptions{Ref: b.Commit.ID})
			if err != nil {
				return false, "", apiErr("get tree of "+b.Commit.ID, resp, err)
			}
			short := b.Commit.ID[:min(12, len(b.Commit.ID))]
			if t.sameRoot(tree) {
				return true, fmt.Sprintf("%s at %s has exactly the %d files of %s", branch, short, t.files, r.opts.Dir), nil
			}
			// After the first commit changes reach the branch through pull
			// requests (it is protected); bootstrap never rewrites it.
			r.warn("%s differs from %s at %s: not pushed (the branch exists); commit the changes through a pull request", r.opts.Dir, branch, short)
			return true, fmt.Sprintf("%s exists at %s (differs from %s, not pushed)", branch, short, r.opts.Dir), nil
		},
		apply: func(ctx context.Context) (Status, string, error) {
			h, err := r.push(ctx)
			if err != nil {
				return "", "", err
			}
			return StatusCreated, fmt.Sprintf("pushed %d files to %s as %s", r.tree.files, branch, h.String()[:12]), nil
		},
	}
}

// Bounds of waitNotEmpty: Gitea was seen taking a few seconds.
var (
	emptyWait = 60 * time.Second
	emptyPoll = 500 * time.Millisecond
)

// waitNotEmpty waits, bounded by emptyWait, until Gitea no longer flags
// the repository empty; one still flagged empty after that is left to
// the branch lookup's own error. It returns only a cancelled context's
// error.
func (r *runner) waitNotEmpty(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, emptyWait)
	defer cancel()
	for {
		repo, _, err := r.api.GetRepo(r.forge.Owner, r.forge.Repo)
		if err == nil && !repo.Empty {
			r.repo = repo
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(r.ctx)
		case <-time.After(emptyPoll):
		}
	}
}

// push commits r.tree (no parent) and pushes it to the default branch.
func (r *runner) push(ctx context.Context) (plumbing.Hash, error) {
	t := r.tree
	sig := object.Signature{Name: r.h.Metadata.Name + " homelab", Email: r.h.Spec.Email, When: r.opts.Now()}
	c := &object.Commit{Author: sig, Committer: sig, Message: r.commitMessage(), TreeHash: t.hash}
	obj := t.st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := t.st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ref := plumbing.NewBranchReferenceName(r.forge.DefaultBranch)
	if err := t.st.SetReference(plumbing.NewHashReference(ref, h)); err != nil {
		return plumbing.ZeroHash, err
	}
	remote := git.NewRemote(t.st, &gitconfig.RemoteConfig{Name: "origin", URLs: []string{r.cloneURL()}})
	// Retried through a forge's passing failures: pushing the same commit
	// again either lands it or finds it there already.
	err = gitretry.Do(ctx, func() error {
		err := remote.PushContext(ctx, &git.PushOptions{
			RemoteName: "origin",
			RefSpecs:   []gitconfig.RefSpec{gitconfig.RefSpec(ref + ":" + ref)},
			// Gitea takes an access token as the password of basic auth.
			Auth: &githttp.BasicAuth{Username: r.me.UserName, Password: r.opts.Token},
		})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil
		}
		return err
	})
	if err != nil {
		// go-git's errors name the URL (no credentials in it) but not
		// what was being done.
		return plumbing.ZeroHash, fmt.Errorf("git push %s %s: %w", r.cloneURL(), r.forge.DefaultBranch, err)
	}
	return h, nil
}
