// Package extract owns finding dependencies in a repository: the Extractor
// interface (one implementation per file kind, like Renovate's managers),
// the registry of extractors, and Scan, which walks a repo once, hands each
// file to the extractors that match it and returns every pinned version
// with its byte range.
//
// Scan works on any repo, not only hl-rendered ones: extractors recognise
// file kinds by name and content, never by hl's layout.
package extract

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract/actions"
	"hl.dev/hl/bot/extract/argocd"
	"hl.dev/hl/bot/extract/compose"
	"hl.dev/hl/bot/extract/dockerfile"
	"hl.dev/hl/bot/extract/helmchart"
	"hl.dev/hl/bot/extract/helmvalues"
	"hl.dev/hl/bot/extract/k3s"
	"hl.dev/hl/bot/extract/kubernetes"
	"hl.dev/hl/bot/extract/kustomize"
	"hl.dev/hl/bot/extract/osimage"
	"hl.dev/hl/bot/extract/woodpecker"
	"hl.dev/hl/internal/repofs"
)

// Extractor finds dependencies in one kind of file.
type Extractor interface {
	// Name is the manager name recorded in bot.Dependency.Manager.
	Name() string
	// Match reports whether path (repo-relative, slash-separated) is a
	// file this extractor reads.
	Match(path string) bool
	// Extract returns the file's dependencies with File and Manager set.
	// An error means the file could not be read as this kind; Scan
	// reports it as a problem and goes on.
	Extract(path string, content []byte) ([]bot.Dependency, error)
}

// All returns every registered extractor.
func All() []Extractor {
	return []Extractor{
		helmchart.Extractor{},
		helmvalues.Extractor{},
		argocd.Extractor{},
		kubernetes.Extractor{},
		kustomize.Extractor{},
		k3s.Extractor{},
		osimage.Extractor{},
		woodpecker.Extractor{},
		dockerfile.Extractor{},
		compose.Extractor{},
		actions.Extractor{},
	}
}

// Names lists the registered managers.
func Names() []string {
	var out []string
	for _, e := range All() {
		out = append(out, e.Name())
	}
	return out
}

// Problem is a file Scan could not read; the rest of the repo is scanned.
type Problem struct {
	File    string `json:"file"`
	Manager string `json:"manager,omitempty"`
	Message string `json:"message"`
}

// Options tune Scan.
type Options struct {
	// Extractors overrides All() (tests, --manager filters).
	Extractors []Extractor
	// MaxFileSize skips larger files (default 4 MiB): pinned versions live
	// in small hand-edited files, not in vendored bundles.
	MaxFileSize int64
}

// Scan walks dir and extracts every dependency, sorted by file and offset.
func Scan(ctx context.Context, dir string, opts Options) ([]bot.Dependency, []Problem, error) {
	exts := opts.Extractors
	if exts == nil {
		exts = All()
	}
	maxSize := opts.MaxFileSize
	if maxSize <= 0 {
		maxSize = 4 << 20
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, nil, fmt.Errorf("scan %s: not a directory", dir)
	}
	var (
		deps     []bot.Dependency
		problems []Problem
		matched  []Extractor
	)
	err = repofs.Walk(dir, func(e repofs.Entry) error {
		rel, p, d := e.Path, e.Abs, e.DirEntry
		if e.Err != nil {
			problems = append(problems, Problem{File: rel, Message: e.Err.Error()})
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if !d.Type().IsRegular() {
			return nil // symlinks may leave the repo
		}
		if strings.Contains(rel, ".sops.") {
			return nil // encrypted: nothing a human pinned
		}
		matched = matched[:0]
		for _, e := range exts {
			if e.Match(rel) {
				matched = append(matched, e)
			}
		}
		if len(matched) == 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			problems = append(problems, Problem{File: rel, Message: err.Error()})
			return nil
		}
		if fi.Size() > maxSize {
			problems = append(problems, Problem{File: rel, Message: fmt.Sprintf("skipped: %d bytes is over the %d byte limit", fi.Size(), maxSize)})
			return nil
		}
		content, err := os.ReadFile(p)
		if err != nil {
			problems = append(problems, Problem{File: rel, Message: err.Error()})
			return nil
		}
		reported := false
		for _, e := range matched {
			found, err := e.Extract(rel, content)
			// Helm and other templates are not YAML until rendered: not
			// being able to read one is expected, not a problem. A file
			// several extractors cannot read is reported once.
			if err != nil && !reported && !bytes.Contains(content, []byte("{{")) {
				problems = append(problems, Problem{File: rel, Manager: e.Name(), Message: err.Error()})
				reported = true
			}
			setLines(content, found)
			deps = append(deps, found...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.SkipAll) {
		return nil, problems, fmt.Errorf("scan %s: %w", dir, err)
	}
	Sort(deps)
	return deps, problems, nil
}

// setLines sets each dependency's Line from its range.
func setLines(content []byte, deps []bot.Dependency) {
	for i := range deps {
		if s := deps[i].Range.Start; s >= 0 && s <= len(content) {
			deps[i].Line = bytes.Count(content[:s], []byte("\n")) + 1
		}
	}
}

// Sort orders dependencies by file, then position, then manager.
func Sort(deps []bot.Dependency) {
	slices.SortStableFunc(deps, func(a, b bot.Dependency) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Range.Start, b.Range.Start), cmp.Compare(a.Manager, b.Manager))
	})
}
