package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/internal/merge"
	"hl.dev/hl/secrets"
)

type renderOptions struct {
	Config         string
	Out            string
	AgeKey         string
	Diff           bool
	Check          bool
	AllowConflicts bool
	Example        bool
	Roadmap        bool
}

func newRenderCmd(s *shared) *cobra.Command {
	opts := &renderOptions{}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render the GitOps repo from hl.yaml (3-way merged with your edits)",
		Long: `Render the repository from hl.yaml into --out (default: hl.yaml's folder).

Re-rendering merges the new render with the repo as it is (base: the last
render, kept in .hl/): your edits and the bot's version bumps survive,
template changes on lines you did not touch apply. Conflicts write nothing
unless --allow-conflicts. Existing secrets are reused; a secret file whose
values did not change keeps its exact ciphertext.

Without an age identity (--age-key, $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY or
the one hl init keeps in your config folder) existing encrypted files are
kept as they are and only missing ones are generated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRender(cmd.Context(), s, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Config, "config", "hl.yaml", "hl.yaml to render")
	f.StringVar(&opts.Out, "out", "", "repository folder to render into (default: the config's folder)")
	f.StringVar(&opts.AgeKey, "age-key", "", "age identity file to decrypt existing secrets (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY, then "+secrets.DefaultIdentityFile()+")")
	f.BoolVar(&opts.Diff, "diff", false, "print a unified diff of what would change (secret values masked) and write nothing")
	f.BoolVar(&opts.Check, "check", false, "exit 1 if the repo differs from a fresh render; write nothing (for CI)")
	f.BoolVar(&opts.AllowConflicts, "allow-conflicts", false, "write conflicting files with conflict markers instead of refusing")
	f.BoolVar(&opts.Example, "example", false, "render the embedded example hl.yaml (needs --out)")
	f.BoolVar(&opts.Roadmap, "roadmap", false, "list every homelab capability with the files implementing it (always shown on a first render)")
	return cmd
}

func runRender(ctx context.Context, s *shared, opts *renderOptions) error {
	ios := s.ios
	gopts := generator.Options{
		ConfigPath:     opts.Config,
		OutDir:         opts.Out,
		AllowConflicts: opts.AllowConflicts,
		DryRun:         opts.Diff || opts.Check,
	}
	if opts.Example {
		if opts.Out == "" {
			return &exitError{code: 2, msg: "--example needs --out DIR"}
		}
		gopts.ConfigPath, gopts.ConfigData = "example.yaml", config.Example()
	}
	ids, err := s.identities(opts.AgeKey, false)
	if err != nil {
		return err
	}
	gopts.Identities = ids
	res, err := generator.Render(ctx, gopts)
	var cerr *generator.ConfigError
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Fprintln(ios.ErrOut, p.String())
		}
		return &exitError{code: 1, msg: "hl.yaml is invalid; nothing rendered"}
	}
	if res == nil {
		return err
	}
	if ios.JSON() {
		if werr := ios.WriteJSON(res); werr != nil {
			return werr
		}
	} else {
		printRender(ios, res, opts)
	}
	switch {
	case errors.Is(err, generator.ErrConflict):
		return &exitError{code: 3, msg: err.Error()}
	case err != nil:
		return err
	case opts.Check && res.Changed():
		return &exitError{code: 1, msg: "the repo differs from a fresh render of hl.yaml (run hl render)"}
	}
	return nil
}

func printRender(ios *iostreams.IOStreams, res *generator.Result, opts *renderOptions) {
	counts := map[generator.Action]int{}
	for _, f := range res.Files {
		counts[f.Action]++
		switch {
		case opts.Diff && f.Action != generator.ActionUnchanged && f.Action != generator.ActionKeep:
			if f.Secret {
				fmt.Fprintf(ios.Out, "secret %s: %s (values hidden)\n", f.Path, f.Action)
				continue
			}
			old, new := generator.Contents(f)
			fmt.Fprint(ios.Out, merge.Diff(old, new, "a/"+f.Path, "b/"+f.Path, 3))
		case f.Action == generator.ActionUnchanged:
		case f.Action == generator.ActionConflict:
			fmt.Fprintf(ios.ErrOut, "conflict %s: %s\n", f.Path, f.Note)
			for _, h := range f.Conflicts {
				fmt.Fprintln(ios.ErrOut, h)
			}
		case !opts.Diff:
			note := ""
			if f.Note != "" {
				note = " (" + f.Note + ")"
			}
			fmt.Fprintf(ios.Out, "%-9s %s%s\n", f.Action, f.Path, note)
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(ios.ErrOut, "warning:", w)
	}
	if res.SecretsUnchecked > 0 {
		fmt.Fprintf(ios.ErrOut, "note: no age identity given: %d existing secret files kept as they are, not decrypted or checked\n", res.SecretsUnchecked)
	}
	if opts.Roadmap || counts[generator.ActionAdd] == len(res.Files) {
		printRoadmap(ios, res.Roadmap)
	}
	verb := "rendered"
	if !res.Written {
		verb = "would render"
	}
	dir, _ := filepath.Abs(res.OutDir)
	fmt.Fprintf(ios.ErrOut, "%s %s: %d added, %d updated, %d deleted, %d unchanged, %d kept, %d conflicts; secrets: %d generated, %d kept, %d re-encrypted\n",
		verb, dir, counts[generator.ActionAdd], counts[generator.ActionUpdate], counts[generator.ActionDelete], counts[generator.ActionUnchanged],
		counts[generator.ActionKeep], counts[generator.ActionConflict], res.SecretsGenerated, res.SecretsKept, res.SecretsReencrypted)
}

func printRoadmap(ios *iostreams.IOStreams, items []generator.RoadmapItem) {
	fmt.Fprintln(ios.Out, "\nWhat this homelab has:")
	for _, it := range items {
		switch {
		case len(it.Files) > 0:
			fmt.Fprintf(ios.Out, "  [x] %s\n", it.Title)
			for _, f := range it.Files {
				fmt.Fprintf(ios.Out, "        %s\n", f)
			}
		case it.NotApplicable != "":
			fmt.Fprintf(ios.Out, "  [-] %s (%s)\n", it.Title, it.NotApplicable)
		default:
			fmt.Fprintf(ios.Out, "  [ ] %s (missing)\n", it.Title)
		}
	}
}
