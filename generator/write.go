package generator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// stage collects a render's files before anything in the repo changes.
// A render into a missing or empty folder is staged in a sibling folder
// that then replaces the target in one rename; a re-render is staged in
// .hl/.staging-*/new (same file system), fsynced file by file, and then
// moved into place under a journal (see commit). A failure before the
// moves leaves the repo untouched; a failure during them is rolled back,
// and a render that died during them is rolled back by the next one. The
// staging folder is made on the first put, so a render that writes
// nothing makes none.
//
// File creation dominates a render (see BENCHMARKS.md): each staged
// directory is made once, and chmod is called only when the umask
// actually stripped a wanted bit.
type stage struct {
	dir   string
	fresh bool
	root  string // the staging folder, "" until the first put
	files string // where files are staged: root (fresh) or root/new
	// staged holds the repo-relative paths staged so far; for a re-render
	// with the sha256 of their content, which the journal records.
	staged map[string]string
	dirs   map[string]bool      // directories made under files
	exact  map[fs.FileMode]bool // modes WriteFile is known to create exactly
	// journal is root/journal of a re-render, locked from the first put
	// until the staging folder is gone, so that no other render takes the
	// folder for an interrupted one.
	journal *os.File
}

// Names inside .hl/ and a re-render's staging folder.
const (
	stagingPrefix = ".staging-"
	journalName   = "journal"
	newDir        = "new" // the staged files, at their repo paths
	oldDir        = "old" // what the moves replaced or deleted, by op number
)

func openStage(dir string) (*stage, error) {
	fresh, err := isEmptyDir(dir)
	if err != nil {
		return nil, err
	}
	return &stage{dir: dir, fresh: fresh, staged: map[string]string{}, dirs: map[string]bool{}, exact: map[fs.FileMode]bool{}}, nil
}

// open makes the staging folder (and a re-render's locked journal).
func (s *stage) open() error {
	if s.fresh {
		parent := filepath.Dir(filepath.Clean(s.dir))
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		root, err := os.MkdirTemp(parent, "."+filepath.Base(s.dir)+".hl-render-")
		if err != nil {
			return err
		}
		s.root, s.files = root, root
		s.dirs[root] = true
		return nil
	}
	parent := filepath.Join(s.dir, stateDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	root, err := os.MkdirTemp(parent, stagingPrefix)
	if err != nil {
		return err
	}
	j, err := os.OpenFile(filepath.Join(root, journalName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if err = tryLock(j); err != nil {
			j.Close()
		}
	}
	if err != nil {
		os.RemoveAll(root)
		return fmt.Errorf("render journal: %w", err)
	}
	s.root, s.files, s.journal = root, filepath.Join(root, newDir), j
	return nil
}

// put stages one file (repo-relative slash path).
func (s *stage) put(p string, data []byte, mode fs.FileMode) error {
	if s.root == "" {
		if err := s.open(); err != nil {
			return err
		}
	}
	if err := s.write(filepath.Join(s.files, filepath.FromSlash(p)), data, mode); err != nil {
		return fmt.Errorf("stage %s: %w (nothing written)", p, err)
	}
	if s.fresh {
		s.staged[p] = ""
	} else {
		s.staged[p] = sum(data)
	}
	return nil
}

func (s *stage) write(p string, data []byte, mode fs.FileMode) error {
	if d := filepath.Dir(p); !s.dirs[d] {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for ; len(d) >= len(s.files); d = filepath.Dir(d) {
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

// discard removes the staging folder. The journal goes first, while it
// is still locked: a folder without a journal is garbage to every render.
func (s *stage) discard() {
	if s.root == "" {
		return
	}
	if s.journal != nil {
		err := os.Remove(s.journal.Name())
		s.journal.Close()
		if err != nil { // where an open file cannot be removed
			os.Remove(s.journal.Name())
		}
		s.journal = nil
	}
	os.RemoveAll(s.root)
	s.root = ""
}

// abandon leaves the staging folder and its journal for the next render
// to roll back.
func (s *stage) abandon() {
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
	s.root = ""
}

// beforeOp, when set, runs before each move or delete of a re-render's
// commit, with the repo path: the tests' seam to make one file fail to
// move or to kill the process midway.
var beforeOp func(path string) error

// commit moves the staged files into place and removes deletes.
//
// A re-render commits under a journal with roll-back, chosen over roll
// forward: a render that fails midway then leaves the previous tree at
// once (the promise of Render: on an error nothing is written), and one
// that died midway is undone by the next render, which then renders
// from a consistent tree and merge base (even when hl.yaml or the
// templates changed in between). Rolling forward would leave the repo
// half-written until the next render, and a file that cannot be replaced
// (immutable, permissions) would keep every later render failing. The
// cost is one hard link per replaced or deleted file, taken just before
// it is replaced; renders that change nothing commit nothing.
//
// Steps: the staged files are fsynced; the journal (root/journal: every
// move and delete in order, with the sha256 of each new file, then
// "end") is written and fsynced; before each move or delete the file
// there is hard-linked to root/old/<op number>; the moves of the repo's
// files and their deletes come first and .hl/ (the merge base, the state
// file last) after them, so the merge base never advances past a file
// that is not in place. Removing the journal is the commit point. To
// roll back, rollBack walks the journal backwards and puts back what each
// step replaced, keeping any file that changed since (see rollBack).
func (s *stage) commit(deletes []string) error {
	if s.root == "" && len(deletes) == 0 {
		return nil
	}
	if s.fresh {
		return s.commitFresh()
	}
	if s.root == "" {
		if err := s.open(); err != nil {
			return err
		}
	}
	defer s.discard() // also a successful commit's last step
	if len(s.staged) > 0 {
		// The staged files are on disk before any of them replaces a
		// file, so a power cut during the moves leaves each file old or
		// new, and the journal can undo the new ones.
		if err := s.sync(); err != nil {
			return fmt.Errorf("sync staged files: %w (nothing written)", err)
		}
	}
	ops := s.ops(deletes)
	if err := s.writeJournal(ops); err != nil {
		return fmt.Errorf("write the render journal: %w (nothing written)", err)
	}
	made := map[string]bool{}
	for i, o := range ops {
		err := s.do(i, o, made)
		if err == nil {
			continue
		}
		err = fmt.Errorf("%s %s: %w", o.verb(), o.path, err)
		if _, rerr := rollBack(s.dir, s.root, ops); rerr != nil {
			s.abandon()
			return fmt.Errorf("%w; rolling back failed too: %v (the next hl render finishes the roll-back)", err, rerr)
		}
		return fmt.Errorf("%w (rolled back: nothing written)", err)
	}
	return nil
}

// commitFresh renames a first render's staging folder into place.
func (s *stage) commitFresh() error {
	if s.root == "" {
		return nil // nothing to delete in an empty folder either
	}
	defer s.discard()
	if err := os.Chmod(s.root, 0o755); err != nil { // MkdirTemp makes it 0700
		return err
	}
	// No fsync here: nothing existed to be protected, and a first render
	// lost to a power cut is rendered again (syncing the file system cost
	// more than the render whenever anything else was writing). os.Rename
	// refuses an existing directory as the target even when it is empty;
	// the empty target goes first.
	if err := os.Remove(s.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace empty %s: %w (nothing written)", s.dir, err)
	}
	if err := os.Rename(s.root, s.dir); err != nil {
		return fmt.Errorf("move the render into %s: %w (nothing written)", s.dir, err)
	}
	s.root = ""
	return nil
}

// op is one step of a re-render's commit.
type op struct {
	delete bool
	path   string
	sum    string // sha256 of the staged file ("" for a delete)
}

func (o op) verb() string {
	if o.delete {
		return "delete"
	}
	return "move into place"
}

// ops orders the commit: the repo's files, then its deletes, then .hl/
// with the merge base and the state file last, then .hl/'s deletes.
func (s *stage) ops(deletes []string) []op {
	out := make([]op, 0, len(s.staged)+len(deletes))
	for p, h := range s.staged {
		out = append(out, op{path: p, sum: h})
	}
	for _, p := range deletes {
		out = append(out, op{delete: true, path: p})
	}
	rank := func(o op) int {
		switch {
		case !isState(o.path) && !o.delete:
			return 0
		case !isState(o.path):
			return 1
		case o.delete:
			return 5
		case o.path == stateFile:
			return 4
		case o.path == baseFile:
			return 3
		}
		return 2
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i]), rank(out[j]); ri != rj {
			return ri < rj
		}
		return out[i].path < out[j].path
	})
	return out
}

// journalMagic starts a journal.
const journalMagic = "# hl render journal v1: the moves and deletes of a render in progress.\n"

func (s *stage) writeJournal(ops []op) error {
	var b bytes.Buffer
	b.WriteString(journalMagic)
	for _, o := range ops {
		verb, h := "move", o.sum
		if o.delete {
			verb, h = "delete", "-"
		}
		b.WriteString(verb + " " + h + " " + strconv.Quote(o.path) + "\n")
	}
	b.WriteString("end\n")
	if _, err := s.journal.Write(b.Bytes()); err != nil {
		return err
	}
	if err := s.journal.Sync(); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(s.root, oldDir), 0o700); err != nil {
		return err
	}
	return fsync(s.root) // the journal's entry
}

// readJournal parses a journal; complete is false when it lacks its end
// line (the render died before its first move: there is nothing to undo).
func readJournal(data []byte) (ops []op, complete bool, err error) {
	rest, ok := bytes.CutPrefix(data, []byte(journalMagic))
	if !ok {
		return nil, false, nil
	}
	for line := 2; len(rest) > 0; line++ {
		l, after, ok := bytes.Cut(rest, []byte{'\n'})
		if !ok {
			return nil, false, nil // cut short while written
		}
		rest = after
		if string(l) == "end" {
			return ops, len(rest) == 0, nil
		}
		f := strings.SplitN(string(l), " ", 3)
		if len(f) != 3 {
			return nil, false, fmt.Errorf("line %d: want \"<move|delete> <sha256|-> <path>\"", line)
		}
		p, err := strconv.Unquote(f[2])
		if err != nil || !filepath.IsLocal(filepath.FromSlash(p)) {
			return nil, false, fmt.Errorf("line %d: bad path %s", line, f[2])
		}
		switch f[0] {
		case "move":
			ops = append(ops, op{path: p, sum: f[1]})
		case "delete":
			ops = append(ops, op{delete: true, path: p})
		default:
			return nil, false, fmt.Errorf("line %d: unknown step %q", line, f[0])
		}
	}
	return nil, false, nil
}

// do runs op number i: the file there is first hard-linked (or, where
// links are not possible, copied) to root/old/<i>, then replaced or
// removed.
func (s *stage) do(i int, o op, made map[string]bool) error {
	if beforeOp != nil {
		if err := beforeOp(o.path); err != nil {
			return err
		}
	}
	dst := filepath.Join(s.dir, filepath.FromSlash(o.path))
	saved, err := backUp(dst, filepath.Join(s.root, oldDir, strconv.Itoa(i)))
	if err != nil {
		return err
	}
	if o.delete {
		if !saved {
			return nil // already gone
		}
		if err := os.Remove(dst); err != nil {
			return err
		}
		removeEmptyParents(s.dir, filepath.Dir(dst))
		return nil
	}
	if d := filepath.Dir(dst); !made[d] {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		made[d] = true
	}
	return os.Rename(filepath.Join(s.files, filepath.FromSlash(o.path)), dst)
}

// backUp keeps the file at p as bak; saved is false when there is none.
func backUp(p, bak string) (saved bool, err error) {
	err = os.Link(p, bak)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	data, rerr := os.ReadFile(p) // a file system without hard links
	if rerr != nil {
		return false, err
	}
	if werr := os.WriteFile(bak, data, 0o600); werr != nil {
		return false, err
	}
	return true, nil
}

// rollBack undoes a journal's steps, last first. A step is undone only
// when the file is still what the render left there (or gone): a file
// changed since the render was interrupted is kept as it is and named in
// the warnings, never overwritten silently.
func rollBack(dir, root string, ops []op) (warnings []string, err error) {
	for i := len(ops) - 1; i >= 0; i-- {
		o := ops[i]
		dst := filepath.Join(dir, filepath.FromSlash(o.path))
		bak := filepath.Join(root, oldDir, strconv.Itoa(i))
		_, berr := os.Lstat(bak)
		saved := berr == nil
		if berr != nil && !errors.Is(berr, os.ErrNotExist) {
			return warnings, berr
		}
		if o.delete {
			if !saved {
				continue // never deleted
			}
			if _, err := os.Lstat(dst); err == nil {
				continue // not deleted yet, or made again since: keep it
			}
			if err := restore(bak, dst); err != nil {
				return warnings, fmt.Errorf("put back %s: %w", o.path, err)
			}
			continue
		}
		_, serr := os.Lstat(filepath.Join(root, newDir, filepath.FromSlash(o.path)))
		moved := errors.Is(serr, os.ErrNotExist)
		if !saved && !moved {
			continue // never started
		}
		cur, cerr := os.ReadFile(dst)
		if cerr != nil && !errors.Is(cerr, os.ErrNotExist) {
			return warnings, cerr
		}
		if cerr == nil && sum(cur) != o.sum {
			if saved && sameFile(dst, bak, cur) {
				continue // backed up, but never replaced
			}
			warnings = append(warnings, fmt.Sprintf("%s changed after the interrupted render: kept as it is", o.path))
			continue
		}
		switch {
		case saved:
			err = restore(bak, dst)
		case cerr == nil:
			if err = os.Remove(dst); err == nil {
				removeEmptyParents(dir, filepath.Dir(dst))
			}
		}
		if err != nil {
			return warnings, fmt.Errorf("put back %s: %w", o.path, err)
		}
	}
	return warnings, nil
}

func restore(bak, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.Rename(bak, dst)
}

// sameFile reports whether p (with content cur) is the file backed up as
// bak: the same inode, or a copy with the same bytes.
func sameFile(p, bak string, cur []byte) bool {
	a, aerr := os.Lstat(p)
	b, berr := os.Lstat(bak)
	if aerr == nil && berr == nil && os.SameFile(a, b) {
		return true
	}
	old, err := os.ReadFile(bak)
	return err == nil && bytes.Equal(old, cur)
}

// recoverRender rolls back every render of dir that died while moving
// its files into place (a journal with its end line), and removes
// staging folders that never got that far. A dry run writes nothing: it
// refuses to run on top of an interrupted render. The warnings say what
// happened.
func recoverRender(dir string, dryRun bool) ([]string, error) {
	parent := filepath.Join(dir, stateDir)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stagingPrefix) {
			continue
		}
		w, err := recoverStaging(dir, filepath.Join(parent, e.Name()), dryRun)
		if err != nil {
			return warnings, err
		}
		warnings = append(warnings, w...)
	}
	return warnings, nil
}

func recoverStaging(dir, root string, dryRun bool) ([]string, error) {
	rel := path.Join(stateDir, filepath.Base(root))
	j, err := os.OpenFile(filepath.Join(root, journalName), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		if !dryRun { // staging that never got a journal, or a finished render's leftovers
			os.RemoveAll(root)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer j.Close()
	if err := tryLock(j); err != nil {
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("another hl render is writing %s (it holds %s): let it finish first", dir, rel)
		}
		return nil, err
	}
	data, err := io.ReadAll(j)
	if err != nil {
		return nil, err
	}
	ops, complete, err := readJournal(data)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", rel, journalName, err)
	}
	if !complete {
		if !dryRun { // died before its first move: nothing to undo
			os.Remove(j.Name())
			os.RemoveAll(root)
		}
		return nil, nil
	}
	if dryRun {
		return nil, fmt.Errorf("a render of %s was interrupted while moving files into place (%s): run hl render without --diff or --check to roll it back first", dir, rel)
	}
	warnings, err := rollBack(dir, root, ops)
	if err != nil {
		return nil, fmt.Errorf("roll back the render interrupted in %s: %w", rel, err)
	}
	os.Remove(j.Name())
	os.RemoveAll(root)
	return append([]string{fmt.Sprintf("rolled back a render that was interrupted while moving %d files into place; this render starts from the tree before it", len(ops))}, warnings...), nil
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
		if _, ok := stg.staged[f.Path]; ok {
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
		paths <- filepath.Join(s.files, filepath.FromSlash(p))
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

// isEmptyDir reports whether dir is missing or an empty folder. A link
// to an empty folder is not: a first render would replace the link with
// its staging folder, where the user asked for the render to land in the
// link's target.
func isEmptyDir(dir string) (bool, error) {
	fi, err := os.Lstat(filepath.Clean(dir))
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil || fi.Mode()&os.ModeSymlink != 0 {
		return false, err
	}
	entries, err := os.ReadDir(dir)
	return len(entries) == 0, err
}

// linkGuard refuses a render that would read or write through a symbolic
// link inside the output folder (a link named on the command line as
// --out itself is the user's choice and is followed). A link there may
// point out of the repo (a rename through it would replace files
// elsewhere, a read would copy their content into diffs and merges) or
// make two rendered paths one file; replacing it instead would silently
// undo a change the user made. So the render stops before writing
// anything and names the link. Every path the render reads or writes is
// checked once, each folder on the way once (a few µs per path); a link
// made between this check and the moves is not caught: whoever can do
// that can write the repo anyway.
type linkGuard struct {
	dir     string
	checked map[string]bool // repo paths checked; false: missing, nothing below exists
}

func newLinkGuard(dir string) *linkGuard {
	return &linkGuard{dir: dir, checked: map[string]bool{}}
}

// check checks one repo-relative slash path and the folders above it.
func (g *linkGuard) check(p string) error {
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		q := p[:i]
		exists, seen := g.checked[q]
		if seen {
			if !exists {
				return nil
			}
			continue
		}
		fi, err := os.Lstat(filepath.Join(g.dir, filepath.FromSlash(q)))
		switch {
		case errors.Is(err, os.ErrNotExist):
			g.checked[q] = false
			return nil
		case err != nil:
			return err
		case fi.Mode()&os.ModeSymlink != 0:
			return g.refuse(q)
		}
		g.checked[q] = true
	}
	return nil
}

// checkAll checks paths in order, so the error names the first link.
func (g *linkGuard) checkAll(paths []string) error {
	for _, p := range paths {
		if err := g.check(p); err != nil {
			return err
		}
	}
	return nil
}

func (g *linkGuard) refuse(q string) error {
	abs := filepath.Join(g.dir, filepath.FromSlash(q))
	target, _ := os.Readlink(abs)
	where := ""
	if out, err := filepath.EvalSymlinks(g.dir); err == nil {
		if to, err := filepath.EvalSymlinks(abs); err == nil {
			if rel, err := filepath.Rel(out, to); err != nil || !filepath.IsLocal(rel) {
				where = ", outside the output folder"
			}
		}
	}
	return fmt.Errorf("%s is a symbolic link (to %s%s): hl does not write through links inside the output folder, nothing was written; replace the link with the folder or file itself, or remove it", q, target, where)
}
