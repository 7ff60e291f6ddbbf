package generator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

// The render state lives in the repo under .hl/ (committed, so every clone
// and the bot can re-render with the same merge base):
//
//	.hl/state.yaml      what the last render wrote: every path with its sha256
//	.hl/base/<path>     the last rendered content of every non-secret file,
//	                    the base of the next 3-way merge
//	.hl/hl.schema.json  the hl.yaml schema for editors (modeline target)
//
// A directory was chosen over a git ref so that rendering works in any
// folder (no git needed), the base is reviewable in PRs, and a bot commit
// that bumps a version leaves the base alone (so the bump survives the
// next render as "ours").
const (
	stateDir  = ".hl"
	stateFile = ".hl/state.yaml"
	baseDir   = ".hl/base"
)

type stateEntry struct {
	Path   string `yaml:"path"`
	SHA256 string `yaml:"sha256"`
	Secret bool   `yaml:"secret,omitempty"`
}

type state struct {
	// Catalog is the sha256 of the catalog the render used.
	Catalog string       `yaml:"catalog"`
	Files   []stateEntry `yaml:"files"`
	// present indexes Files by path; base holds .hl/base contents.
	present map[string]stateEntry
	base    map[string][]byte
}

func readState(dir string) (*state, error) {
	st := &state{present: map[string]stateEntry{}, base: map[string][]byte{}}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%s: %w (delete .hl/ to render without a merge base)", stateFile, err)
	}
	for _, e := range st.Files {
		st.present[e.Path] = e
		if e.Secret {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, baseDir, filepath.FromSlash(e.Path)))
		if err == nil {
			st.base[e.Path] = b
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return st, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// stateFiles renders .hl/ for a plan: the state file, the base copies
// and the schema.
func stateFiles(plan *Plan) map[string][]byte {
	out := map[string][]byte{}
	cat, _ := templates.FS.ReadFile("catalog.yaml")
	st := state{Catalog: sum(cat)}
	for _, p := range plan.Paths() {
		f := plan.Files[p]
		st.Files = append(st.Files, stateEntry{Path: p, SHA256: sum(f.Content), Secret: f.Secret != nil})
		if f.Secret == nil {
			out[path.Join(baseDir, p)] = f.Content
		}
	}
	var b bytes.Buffer
	b.WriteString("# Written by hl render: what the last render produced. The base of the\n# next render's 3-way merge; do not edit.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	_ = enc.Encode(st)
	out[stateFile] = b.Bytes()
	out[path.Join(stateDir, "hl.schema.json")] = config.Schema()
	return out
}

// isState reports whether p is hl's own bookkeeping.
func isState(p string) bool { return p == stateDir || strings.HasPrefix(p, stateDir+"/") }

// listRepo lists every regular file under dir outside .git and .hl.
func listRepo(dir string) (map[string]bool, error) {
	out := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p == dir {
				return filepath.SkipAll
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() && (rel == ".git" || rel == stateDir) {
			return filepath.SkipDir
		}
		if e.Type().IsRegular() {
			out[rel] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
