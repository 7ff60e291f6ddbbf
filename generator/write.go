package generator

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// apply writes a merged render. Everything is first written to a staging
// folder inside .hl/ (same file system, fsynced file by file), then
// renamed into place,
// then stale files are removed: a failure before the renames leaves the
// repo untouched, and the renames themselves cannot fail half-way for
// want of space or a template error.
func apply(dir string, plan *Plan, st *state, res *Result, config []byte) error {
	writes := map[string][]byte{}
	modes := map[string]fs.FileMode{}
	var deletes []string
	for _, f := range res.Files {
		switch f.Action {
		case ActionAdd, ActionUpdate, ActionConflict:
			writes[f.Path] = f.new
			modes[f.Path] = 0o644
			if pf, ok := plan.Files[f.Path]; ok {
				modes[f.Path] = pf.Mode
			}
		case ActionDelete:
			deletes = append(deletes, f.Path)
		}
	}
	for p, content := range stateFiles(plan) {
		// The merge base was read by readState already.
		old, err := st.baseRaw, error(nil)
		if p != baseFile {
			old, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		}
		if err != nil || old == nil || !bytes.Equal(old, content) {
			writes[p] = content
			modes[p] = 0o644
		}
	}
	if config != nil {
		writes["hl.yaml"] = config
		modes["hl.yaml"] = 0o644
	}
	// An old-style .hl/base/ tree, replaced by .hl/merge-base.
	deletes = append(deletes, st.legacy...)
	if len(writes) == 0 && len(deletes) == 0 {
		return nil
	}
	if empty, err := isEmptyDir(dir); err != nil {
		return err
	} else if empty {
		return applyFresh(dir, writes, modes)
	}
	if err := os.MkdirAll(filepath.Join(dir, stateDir), 0o755); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(filepath.Join(dir, stateDir), ".staging-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	order := sortedKeys(writes)
	stage := newStager(staging)
	for _, p := range order {
		if err := stage.write(p, writes[p], modes[p]); err != nil {
			return fmt.Errorf("stage %s: %w (nothing written)", p, err)
		}
	}
	// The staged files are on disk before any of them replaces a file, so
	// a power cut during the renames leaves each file old or new.
	if err := stage.sync(); err != nil {
		return fmt.Errorf("sync staged files: %w (nothing written)", err)
	}
	for _, p := range order {
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(staging, filepath.FromSlash(p)), dst); err != nil {
			return fmt.Errorf("move %s into place: %w", p, err)
		}
	}
	sort.Strings(deletes)
	for _, p := range deletes {
		abs := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.Remove(abs); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		removeEmptyParents(dir, filepath.Dir(abs))
	}
	return nil
}

// stager writes files under a fresh folder, creating each directory once
// and calling chmod only when the umask actually stripped a wanted bit
// (file creation dominates a render; see BENCHMARKS.md).
type stager struct {
	root    string
	dirs    map[string]bool
	exact   map[fs.FileMode]bool // modes WriteFile is known to create exactly
	written []string
}

func newStager(root string) *stager {
	return &stager{root: root, dirs: map[string]bool{root: true}, exact: map[fs.FileMode]bool{}}
}

func (s *stager) write(rel string, data []byte, mode fs.FileMode) error {
	p := filepath.Join(s.root, filepath.FromSlash(rel))
	if d := filepath.Dir(p); !s.dirs[d] {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for ; len(d) > len(s.root); d = filepath.Dir(d) {
			s.dirs[d] = true
		}
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		return err
	}
	s.written = append(s.written, p)
	if s.exact[mode] {
		return nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() == mode.Perm() {
		s.exact[mode] = true // the umask leaves this mode alone
		return nil
	}
	return os.Chmod(p, mode) // WriteFile's mode was filtered by the umask
}

// sync flushes the staged files (only those: syncfs would wait for every
// other writer on the file system), several at a time so the file system
// can commit them together.
func (s *stager) sync() error {
	paths := make(chan string)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(8, len(s.written)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range paths {
				if err := fsync(p); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, p := range s.written {
		paths <- p
	}
	close(paths)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func fsync(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func removeEmptyParents(root, dir string) {
	for dir != root && len(dir) > len(root) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// isEmptyDir reports whether dir is missing or holds nothing.
func isEmptyDir(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	return len(entries) == 0, err
}

// applyFresh writes a first render: the whole tree goes to a sibling
// folder, which then replaces the missing or empty target in one rename,
// so a failure at any point leaves no half-written repo behind.
func applyFresh(dir string, writes map[string][]byte, modes map[string]fs.FileMode) error {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".hl-render-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging) // gone after a successful rename
	stage := newStager(staging)
	for _, p := range sortedKeys(writes) {
		if err := stage.write(p, writes[p], modes[p]); err != nil {
			return fmt.Errorf("stage %s: %w (nothing written)", p, err)
		}
	}
	if err := os.Chmod(staging, 0o755); err != nil { // MkdirTemp makes it 0700
		return err
	}
	// No fsync here: nothing existed to be protected, and a first render
	// lost to a power cut is rendered again (syncing the file system cost
	// more than the render whenever anything else was writing).
	// os.Rename refuses an existing directory as the target even when it
	// is empty; the empty target goes first.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace empty %s: %w (nothing written)", dir, err)
	}
	if err := os.Rename(staging, dir); err != nil {
		return fmt.Errorf("move the render into %s: %w (nothing written)", dir, err)
	}
	return nil
}
