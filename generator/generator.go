// Package generator owns turning hl.yaml into a repository on disk: it
// builds a render plan (every file with its content and mode) from the
// embedded templates and catalog, generates and encrypts the secrets the
// templates declare, 3-way merges the plan with the repo as it is now
// (base = the last render recorded in .hl/), and writes the result
// atomically. Same config and same existing secrets give the same bytes.
package generator

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"filippo.io/age"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

// Options configure one render.
type Options struct {
	// ConfigPath is hl.yaml; ConfigData, when set, is used instead of
	// reading it (e.g. the embedded example).
	ConfigPath string
	ConfigData []byte
	// OutDir is the repository root to render into.
	OutDir string
	// Identities decrypt existing secrets. Without them existing encrypted
	// files are kept as they are and only missing ones are generated.
	Identities []age.Identity
	// Rand is the entropy for generated secrets (crypto/rand when nil).
	Rand io.Reader
	// Now gives the date recorded as a secret's generated-at (time.Now
	// when nil). Only the date is used.
	Now func() time.Time
	// AllowConflicts writes files with conflict markers instead of
	// refusing to write anything.
	AllowConflicts bool
	// DryRun computes everything and writes nothing (for --diff and
	// --check).
	DryRun bool
	// Templates overrides the embedded template tree (tests).
	Templates fs.FS
}

// Action says what a render does to one file.
type Action string

// Actions, in the order a summary lists them.
const (
	ActionAdd       Action = "add"
	ActionUpdate    Action = "update"
	ActionDelete    Action = "delete"
	ActionUnchanged Action = "unchanged"
	ActionKeep      Action = "keep"     // user edit or deletion kept
	ActionConflict  Action = "conflict" // 3-way merge could not reconcile
)

// FileResult is what happened to one path.
type FileResult struct {
	Path   string `json:"path"`
	Action Action `json:"action"`
	// Note explains a keep or conflict.
	Note string `json:"note,omitempty"`
	// Conflicts are human-readable hunks for ActionConflict.
	Conflicts []string `json:"conflicts,omitempty"`
	// Secret marks SOPS files, whose content must never be shown.
	Secret bool `json:"secret,omitempty"`
	// old and new content, for --diff (not serialised).
	old, new []byte
	// existed says whether the file was on disk before.
	existed bool
}

// Result is the outcome of a render.
type Result struct {
	OutDir string       `json:"outDir"`
	Files  []FileResult `json:"files"`
	// Secrets counts generated, kept and re-encrypted secrets.
	SecretsGenerated   int `json:"secretsGenerated"`
	SecretsKept        int `json:"secretsKept"`
	SecretsReencrypted int `json:"secretsReencrypted"`
	// SecretsUnchecked are existing secret files kept without decrypting
	// because no age identity was given.
	SecretsUnchecked int      `json:"secretsUnchecked"`
	Warnings         []string `json:"warnings,omitempty"`
	// Roadmap maps every homelab capability to the files implementing it.
	Roadmap []RoadmapItem `json:"roadmap"`
	// Written is false for dry runs and refused (conflicting) renders.
	Written bool `json:"written"`
}

// Changed reports whether the render changes anything on disk.
func (r *Result) Changed() bool {
	for _, f := range r.Files {
		if f.Action != ActionUnchanged && f.Action != ActionKeep {
			return true
		}
	}
	return false
}

// Conflicts returns the conflicting files.
func (r *Result) Conflicts() []FileResult {
	var out []FileResult
	for _, f := range r.Files {
		if f.Action == ActionConflict {
			out = append(out, f)
		}
	}
	return out
}

// ErrConflict is returned (wrapped) when a re-render conflicts with edits
// in the repo and AllowConflicts is off; nothing was written.
var ErrConflict = errors.New("re-render conflicts with changes in the repo")

// ConfigError carries every problem of an invalid hl.yaml.
type ConfigError struct{ Problems config.Problems }

func (e *ConfigError) Error() string { return "hl.yaml is invalid:\n" + e.Problems.Error() }

// Render loads the config, renders the plan, merges it with the repo and
// writes it (unless DryRun). On ErrConflict or any other error nothing is
// written.
func Render(ctx context.Context, opts Options) (*Result, error) {
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Templates == nil {
		opts.Templates = templates.Tree()
	}
	doc, err := loadConfig(opts)
	if err != nil {
		return nil, err
	}
	if opts.OutDir == "" {
		opts.OutDir = filepath.Dir(opts.ConfigPath)
	}
	// A render that died while moving its files is undone first, so this
	// one merges against a tree and a merge base that belong together.
	recovered, err := recoverRender(opts.OutDir, opts.DryRun)
	if err != nil {
		return nil, err
	}
	guard := newLinkGuard(opts.OutDir)
	if err := guard.checkAll([]string{config.FileName, stateFile, baseFile, schemaFile}); err != nil {
		return nil, err
	}
	configBytes, err := configToWrite(opts)
	if err != nil {
		return nil, err
	}
	plan, err := BuildPlan(ctx, doc.Homelab, opts)
	if err != nil {
		return nil, err
	}
	st, err := readState(opts.OutDir)
	if err != nil {
		return nil, err
	}
	if err := guard.checkAll(append(plan.Paths(), sortedKeys(st.present)...)); err != nil {
		return nil, err
	}
	res := &Result{OutDir: opts.OutDir, Warnings: recovered}
	if res.Roadmap, err = Roadmap(plan, plan.data); err != nil {
		return nil, err
	}
	// Secrets are resolved on worker goroutines (bcrypt hashes dominate a
	// first render) while the rest of the tree is merged and staged: first
	// every file outside a folder holding secrets, then, once the secrets
	// are known, the secrets and their folders (each gets the app.yaml of
	// its Application).
	secretDirs := map[string]bool{}
	for p, f := range plan.Files {
		if f.Secret != nil {
			secretDirs[path.Dir(p)] = true
		}
	}
	for p, e := range st.present {
		if e.Secret {
			secretDirs[path.Dir(p)] = true
		}
	}
	outside := func(p string) bool { return !secretDirs[path.Dir(p)] }
	sres := &Result{}
	done := make(chan error, 1)
	go func() { done <- resolveSecrets(plan, opts, sres) }()
	var stg *stage
	err = mergePlan(plan, st, opts, res, outside)
	if err == nil && !opts.DryRun && (len(res.Conflicts()) == 0 || opts.AllowConflicts) {
		if stg, err = openStage(opts.OutDir); err == nil {
			err = stageFiles(stg, plan, res.Files)
		}
	}
	if serr := <-done; err == nil {
		err = serr
	}
	if err == nil {
		res.SecretsGenerated, res.SecretsKept = sres.SecretsGenerated, sres.SecretsKept
		res.SecretsReencrypted, res.SecretsUnchecked = sres.SecretsReencrypted, sres.SecretsUnchecked
		res.Warnings = append(res.Warnings, sres.Warnings...)
		addSecretApps(plan, plan.data)
		err = guard.checkAll(plan.Paths())
	}
	if err == nil {
		err = mergePlan(plan, st, opts, res, func(p string) bool { return !outside(p) })
	}
	if err != nil {
		if stg != nil {
			stg.discard()
		}
		return nil, err
	}
	sort.Slice(res.Files, func(i, j int) bool { return res.Files[i].Path < res.Files[j].Path })
	if len(res.Conflicts()) > 0 && !opts.AllowConflicts {
		if stg != nil {
			stg.discard()
		}
		return res, fmt.Errorf("%w: %d files (nothing written; resolve them or re-run with --allow-conflicts)", ErrConflict, len(res.Conflicts()))
	}
	if opts.DryRun {
		return res, nil
	}
	if stg == nil {
		if stg, err = openStage(opts.OutDir); err != nil {
			return res, err
		}
	}
	if err := apply(stg, plan, st, res, configBytes); err != nil {
		stg.discard()
		return res, err
	}
	res.Written = true
	return res, nil
}

// configToWrite returns hl.yaml's bytes when the output folder has none
// (rendering into a new folder), nil when it already holds this config,
// and an error when it holds a different one.
func configToWrite(opts Options) ([]byte, error) {
	src := opts.ConfigData
	if src == nil {
		var err error
		if src, err = os.ReadFile(opts.ConfigPath); err != nil {
			return nil, err
		}
	}
	dst := filepath.Join(opts.OutDir, config.FileName)
	have, err := os.ReadFile(dst)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return src, nil
	case err != nil:
		return nil, err
	case bytes.Equal(have, src):
		return nil, nil
	}
	return nil, fmt.Errorf("%s differs from %s: render from the hl.yaml inside the repo (hl render --config %s)", dst, opts.ConfigPath, dst)
}

func loadConfig(opts Options) (*config.Document, error) {
	var (
		doc   *config.Document
		probs config.Problems
		err   error
	)
	if opts.ConfigData != nil {
		doc, probs = config.Parse(opts.ConfigPath, opts.ConfigData)
	} else {
		doc, probs, err = config.Load(opts.ConfigPath)
		if err != nil && len(probs) == 0 {
			return nil, err
		}
	}
	if len(probs.Errors()) > 0 {
		return nil, &ConfigError{Problems: probs}
	}
	return doc, nil
}

// Contents returns a file result's content before and after the render,
// for diffs. Never call it to print a secret file.
func Contents(f FileResult) (old, new []byte) { return f.old, f.new }
