// Package repofs walks a repository's working tree the one way every part
// of hl does: the generator's render state, the bot's extractors, the
// secret scans and hl validate all see the same files.
//
// Skipped, always: .git (git's own data), .hl (hl's render state: the
// merge base would otherwise look like a second copy of the repo) and
// dependency caches (node_modules, vendor, .cache). Every other folder is walked, hidden ones included
// (.woodpecker, .gitea/workflows, .forgejo, .github, a stray .secrets/ a
// plaintext Secret could hide in). Symbolic links are reported, never
// followed: a link may point out of the repository.
package repofs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// StateDir is hl's render state folder at the repo root.
const StateDir = ".hl"

// Skip reports whether a folder of this name is never walked.
func Skip(name string) bool {
	switch name {
	case ".git", StateDir, "node_modules", ".cache", "vendor":
		return true
	}
	return false
}

// Entry is one file found by Walk.
type Entry struct {
	// Path is repo-relative with forward slashes.
	Path string
	// Abs is the path on disk.
	Abs string
	fs.DirEntry
	// Err is set when the entry could not be read (a folder without
	// permission): fn returns nil to go on without it, or an error to stop.
	Err error
}

// Walk calls fn for every regular file and symlink under dir, in lexical
// order, with the folders of Skip left out. A missing dir is an empty
// repo. An error from fn stops the walk and is returned; fs.SkipDir from
// fn skips the rest of the file's folder.
func Walk(dir string, fn func(Entry) error) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, os.ErrNotExist) {
				return filepath.SkipAll
			}
			if p == dir || d == nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if ferr := fn(Entry{Path: filepath.ToSlash(rel), Abs: p, DirEntry: d, Err: err}); ferr != nil {
				return ferr
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != dir && Skip(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return fn(Entry{Path: filepath.ToSlash(rel), Abs: p, DirEntry: d})
	})
	return err
}

// Files lists the regular files under dir (repo-relative, sorted) that
// keep says yes to; keep may be nil.
func Files(dir string, keep func(path string) bool) ([]string, error) {
	var out []string
	err := Walk(dir, func(e Entry) error {
		if e.Err != nil {
			return e.Err
		}
		if e.Type().IsRegular() && (keep == nil || keep(e.Path)) {
			out = append(out, e.Path)
		}
		return nil
	})
	return out, err
}
