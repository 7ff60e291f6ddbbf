package generator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/repofs"
	"hl.dev/hl/templates"
)

// The render state lives in the repo under .hl/ (committed, so every clone
// and the bot can re-render with the same merge base):
//
//	.hl/state.yaml      what the last render wrote: every path with its sha256
//	.hl/merge-base      the last rendered content of every non-secret file,
//	                    the base of the next 3-way merge (one text file, see
//	                    encodeBase)
//	.hl/hl.schema.json  the hl.yaml schema for editors (modeline target)
//
// A folder in the repo was chosen over a git ref so that rendering works in
// any folder (no git needed), the base is reviewable in PRs, and a bot
// commit that bumps a version leaves the base alone (so the bump survives
// the next render as "ours"). The base is one file rather than a mirror
// tree: creating a file is the dearest step of a render, and a mirror tree
// doubled the count. Renders before that kept .hl/base/<path>; such a tree
// is read once as the base and then removed.
const (
	stateDir      = ".hl"
	stateFile     = ".hl/state.yaml"
	baseFile      = ".hl/merge-base"
	schemaFile    = ".hl/hl.schema.json"
	legacyBaseDir = ".hl/base"
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
	// present indexes Files by path; base holds the merge base contents.
	present map[string]stateEntry
	base    map[string][]byte
	// raw holds .hl/state.yaml and .hl/merge-base as read (absent when
	// missing), so a render compares its new ones without reading them
	// again; legacy lists the files of an old .hl/base/ tree, to be
	// removed.
	raw    map[string][]byte
	legacy []string
}

func readState(dir string) (*state, error) {
	st := &state{present: map[string]stateEntry{}, base: map[string][]byte{}, raw: map[string][]byte{}}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.raw[stateFile] = data
	if err := yaml.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%s: %w (delete .hl/ to render without a merge base)", stateFile, err)
	}
	for _, e := range st.Files {
		st.present[e.Path] = e
	}
	raw, err := os.ReadFile(filepath.Join(dir, baseFile))
	switch {
	case err == nil:
		st.raw[baseFile] = raw
		if st.base, err = decodeBase(raw); err != nil {
			return nil, fmt.Errorf("%s: %w (delete .hl/ to render without a merge base)", baseFile, err)
		}
		return st, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	// A render from before .hl/merge-base: the base is a mirror tree.
	legacy, err := listRepo(filepath.Join(dir, legacyBaseDir))
	if err != nil {
		return nil, err
	}
	for p := range legacy {
		st.legacy = append(st.legacy, path.Join(legacyBaseDir, p))
	}
	sort.Strings(st.legacy)
	for _, e := range st.Files {
		if e.Secret || !legacy[e.Path] {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, legacyBaseDir, filepath.FromSlash(e.Path)))
		if err != nil {
			return nil, err
		}
		st.base[e.Path] = b
	}
	return st, nil
}

// baseMagic starts .hl/merge-base.
const baseMagic = "# hl merge base v1: the last render of every non-secret file, the base of\n# the next render's 3-way merge. Written by hl render; do not edit.\n"

// encodeBase writes the merge base as one reviewable text file: for each
// path in order, a line "=== <path> <length>" followed by exactly length
// bytes of content and a newline. Lengths make any content safe (no
// escaping, no marker collisions); a PR diff of it reads like a diff of
// the files.
func encodeBase(files map[string][]byte) []byte {
	var b bytes.Buffer
	n := len(baseMagic)
	for p, c := range files {
		n += len(p) + len(c) + 24
	}
	b.Grow(n)
	b.WriteString(baseMagic)
	for _, p := range sortedKeys(files) {
		c := files[p]
		b.WriteString("=== ")
		b.WriteString(p)
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(len(c)))
		b.WriteByte('\n')
		b.Write(c)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// decodeBase reads encodeBase's format; the contents alias data.
func decodeBase(data []byte) (map[string][]byte, error) {
	rest, ok := bytes.CutPrefix(data, []byte(baseMagic))
	if !ok {
		return nil, errors.New("not an hl merge base (bad header)")
	}
	out := map[string][]byte{}
	for line := 3; len(rest) > 0; line++ {
		header, after, ok := bytes.Cut(rest, []byte{'\n'})
		name, ok2 := bytes.CutPrefix(header, []byte("=== "))
		i := bytes.LastIndexByte(name, ' ')
		if !ok || !ok2 || i <= 0 {
			return nil, fmt.Errorf("line %d: want \"=== <path> <length>\"", line)
		}
		n, err := strconv.Atoi(string(name[i+1:]))
		if err != nil || n < 0 || n+1 > len(after) || after[n] != '\n' {
			return nil, fmt.Errorf("line %d: bad length for %s", line, name[:i])
		}
		p := string(name[:i])
		if _, dup := out[p]; dup {
			return nil, fmt.Errorf("line %d: %s twice", line, p)
		}
		out[p] = after[:n:n]
		line += bytes.Count(after[:n], []byte{'\n'}) + 1
		rest = after[n+1:]
	}
	return out, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// stateFiles renders .hl/: the state file, the merge base and the schema.
func stateFiles(plan *Plan) map[string][]byte {
	out := map[string][]byte{}
	cat, _ := templates.FS.ReadFile("catalog.yaml")
	st := state{Catalog: sum(cat)}
	base := map[string][]byte{}
	for _, p := range plan.Paths() {
		f := plan.Files[p]
		st.Files = append(st.Files, stateEntry{Path: p, SHA256: sum(f.Content), Secret: f.Secret != nil})
		if f.Secret == nil {
			base[p] = f.Content
		}
	}
	var b bytes.Buffer
	b.WriteString("# Written by hl render: what the last render produced. The base of the\n# next render's 3-way merge; do not edit.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	_ = enc.Encode(st)
	out[stateFile] = b.Bytes()
	out[baseFile] = encodeBase(base)
	out[schemaFile] = config.Schema()
	return out
}

// isState reports whether p is hl's own bookkeeping.
func isState(p string) bool { return p == stateDir || strings.HasPrefix(p, stateDir+"/") }

// listRepo lists every regular file of the repo at dir (internal/repofs:
// .git and .hl are not the repo's files).
func listRepo(dir string) (map[string]bool, error) {
	files, err := repofs.Files(dir, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(files))
	for _, f := range files {
		out[f] = true
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
