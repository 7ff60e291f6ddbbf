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

// stage collects a render's files before anything in the repo changes.
// A render into a missing or empty folder is staged in a sibling folder
// that then replaces the target in one rename; a re-render is staged in
// .hl/ (same file system), fsynced file by file, renamed into place file
// by file, and only then are stale files removed. A failure before the
// renames leaves the repo untouched, and the renames themselves cannot
// fail half-way for want of space or a template error. The staging folder
// is made on the first put, so a render that writes nothing makes none.
//
// File creation dominates a render (see BENCHMARKS.md): each staged
// directory is made once, and chmod is called only when the umask
// actually stripped a wanted bit.
type stage struct {
	dir    string
	fresh  bool
	root   string               // the staging folder, "" until the first put
	staged map[string]bool      // repo-relative paths staged so far
	dirs   map[string]bool      // directories made under root
	exact  map[fs.FileMode]bool // modes WriteFile is known to create exactly
}

func openStage(dir string) (*stage, error) {
	fresh, err := isEmptyDir(dir)
	if err != nil {
		return nil, err
	}
	return &stage{dir: dir, fresh: fresh, staged: map[string]bool{}, dirs: map[string]bool{}, exact: map[fs.FileMode]bool{}}, nil
}

// put stages one file (repo-relative slash path).
func (s *stage) put(p string, data []byte, mode fs.FileMode) error {
	if s.root == "" {
		parent, pattern := filepath.Join(s.dir, stateDir), ".staging-"
		if s.fresh {
			parent, pattern = filepath.Dir(filepath.Clean(s.dir)), "."+filepath.Base(s.dir)+".hl-render-"
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		root, err := os.MkdirTemp(parent, pattern)
		if err != nil {
			return err
		}
		s.root = root
		s.dirs[root] = true
	}
	if err := s.write(filepath.Join(s.root, filepath.FromSlash(p)), data, mode); err != nil {
		return fmt.Errorf("stage %s: %w (nothing written)", p, err)
	}
	s.staged[p] = true
	return nil
}

func (s *stage) write(p string, data []byte, mode fs.FileMode) error {
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

// discard removes whatever was staged; the repo was never touched.
func (s *stage) discard() {
	if s.root != "" {
		os.RemoveAll(s.root)
		s.root = ""
	}
}

// commit moves the staged files into place and removes deletes.
func (s *stage) commit(deletes []string) error {
	if s.root == "" && len(deletes) == 0 {
		return nil
	}
	defer s.discard() // gone after a successful fresh rename
	if s.fresh {
		if s.root == "" {
			return nil // nothing to delete in an empty folder either
		}
		if err := os.Chmod(s.root, 0o755); err != nil { // MkdirTemp makes it 0700
			return err
		}
		// No fsync here: nothing existed to be protected, and a first
		// render lost to a power cut is rendered again (syncing the file
		// system cost more than the render whenever anything else was
		// writing). os.Rename refuses an existing directory as the target
		// even when it is empty; the empty target goes first.
		if err := os.Remove(s.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replace empty %s: %w (nothing written)", s.dir, err)
		}
		if err := os.Rename(s.root, s.dir); err != nil {
			return fmt.Errorf("move the render into %s: %w (nothing written)", s.dir, err)
		}
		s.root = ""
		return nil
	}
	order := sortedKeys(s.staged)
	if s.root != "" {
		// The staged files are on disk before any of them replaces a
		// file, so a power cut during the renames leaves each file old
		// or new.
		if err := s.sync(); err != nil {
			return fmt.Errorf("sync staged files: %w (nothing written)", err)
		}
	}
	made := map[string]bool{}
	for _, p := range order {
		dst := filepath.Join(s.dir, filepath.FromSlash(p))
		if d := filepath.Dir(dst); !made[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			made[d] = true
		}
		if err := os.Rename(filepath.Join(s.root, filepath.FromSlash(p)), dst); err != nil {
			return fmt.Errorf("move %s into place: %w", p, err)
		}
	}
	sort.Strings(deletes)
	for _, p := range deletes {
		abs := filepath.Join(s.dir, filepath.FromSlash(p))
		if err := os.Remove(abs); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		removeEmptyParents(s.dir, filepath.Dir(abs))
	}
	return nil
}

// stageFiles stages the files a merge result writes, skipping those
// staged already.
func stageFiles(stg *stage, plan *Plan, files []FileResult) error {
	for _, f := range files {
		switch f.Action {
		case ActionAdd, ActionUpdate, ActionConflict:
		default:
			continue
		}
		if stg.staged[f.Path] {
			continue
		}
		mode := fs.FileMode(0o644)
		if pf, ok := plan.Files[f.Path]; ok {
			mode = pf.Mode
		}
		if err := stg.put(f.Path, f.new, mode); err != nil {
			return err
		}
	}
	return nil
}

// apply writes a merged render through stg (which may hold files staged
// while secrets were still being resolved): the rest of the files, the
// render state and hl.yaml, then commits.
func apply(stg *stage, plan *Plan, st *state, res *Result, config []byte) error {
	if err := stageFiles(stg, plan, res.Files); err != nil {
		return err
	}
	var deletes []string
	for _, f := range res.Files {
		if f.Action == ActionDelete {
			deletes = append(deletes, f.Path)
		}
	}
	states := stateFiles(plan)
	for _, p := range sortedKeys(states) {
		content := states[p]
		// The state file and the merge base were read by readState.
		old, ok := st.raw[p]
		if !ok && p != stateFile && p != baseFile {
			old, ok = readIfExists(filepath.Join(stg.dir, filepath.FromSlash(p)))
		}
		if !ok || !bytes.Equal(old, content) {
			if err := stg.put(p, content, 0o644); err != nil {
				return err
			}
		}
	}
	if config != nil {
		if err := stg.put("hl.yaml", config, 0o644); err != nil {
			return err
		}
	}
	// An old-style .hl/base/ tree, replaced by .hl/merge-base.
	deletes = append(deletes, st.legacy...)
	return stg.commit(deletes)
}

// readIfExists returns a file's content and whether it could be read.
func readIfExists(p string) ([]byte, bool) {
	b, err := os.ReadFile(p)
	return b, err == nil
}

// sync flushes the staged files (only those: syncfs would wait for every
// other writer on the file system), several at a time so the file system
// can commit them together.
func (s *stage) sync() error {
	paths := make(chan string)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(8, len(s.staged)) {
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
	for p := range s.staged {
		paths <- filepath.Join(s.root, filepath.FromSlash(p))
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
