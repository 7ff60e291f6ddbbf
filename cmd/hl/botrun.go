package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/internal/config"
)

type botRunOptions struct {
	Once      bool
	DryRun    bool
	Dir       string
	Config    string
	TokenFile string
	Timeout   time.Duration
	Insecure  []string
	CacheDir  string
}

func newBotRunCmd(s *shared) *cobra.Command {
	opts := &botRunOptions{}
	cmd := &cobra.Command{
		Use:   "run --once",
		Short: "Open, update, rebase, close and automerge update PRs on the forge",
		Long: `One pass of the bot: clone the repo from spec.forge (or use --dir, a local
clone whose origin is the forge), find updates, and bring the forge's PRs and
the dependency dashboard issue in line. Safe to kill and re-run.

The token comes from --token-file, $HL_FORGE_TOKEN, or $HL_GITEA_TOKEN
($GITHUB_TOKEN on GitHub); it is never logged. Exits non-zero when any
branch or PR failed.`,
		Example: `  hl bot run --once --dry-run
  hl bot run --once --dir ~/src/homelab`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !opts.Once {
				return &exitError{code: 2, msg: "hl bot run: only --once is supported (the daemon is `hl bot serve`)"}
			}
			return runBotRun(cmd.Context(), s, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Once, "once", false, "do one pass and exit")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print what would be done; push and write nothing")
	f.StringVar(&opts.Dir, "dir", "", "work in this local clone instead of cloning")
	f.StringVar(&opts.Config, "config", "", "hl.yaml (default: DIR/hl.yaml or ./hl.yaml)")
	f.StringVar(&opts.TokenFile, "token-file", "", "read the bot's forge token from this file (- for stdin)")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Minute, "give up after this long")
	f.StringSliceVar(&opts.Insecure, "insecure-registry", nil, "OCI registries spoken to over plain HTTP (host:port)")
	f.StringVar(&opts.CacheDir, "cache-dir", "", "keep the datasource cache (indexes with their validators) in this folder, so the next run's requests are conditional")
	return cmd
}

func runBotRun(ctx context.Context, s *shared, opts *botRunOptions) error {
	ios := s.ios
	cfgPath := opts.Config
	if cfgPath == "" {
		cfgPath = filepath.Join(opts.Dir, config.FileName)
	}
	h, err := s.homelab(cfgPath)
	if err != nil {
		return err
	}
	fg, token, err := s.openForge(h, opts.TokenFile)
	if err != nil {
		return err
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	var lc lookup.Config
	if opts.CacheDir != "" {
		lc.Cache = datasource.NewCacheDir(opts.CacheDir)
	}
	res, err := s.upgradePass(ctx, h, fg, token, upgradeOptions{DryRun: opts.DryRun, Dir: opts.Dir, Insecure: opts.Insecure, Lookup: lc})
	if res != nil {
		if ios.JSON() {
			if jerr := ios.WriteJSON(res); jerr != nil {
				return jerr
			}
		} else {
			for _, a := range res.Actions {
				line := fmt.Sprintf("%-20s %s", a.Verb, a.Branch)
				if a.PR != 0 {
					line += fmt.Sprintf(" #%d", a.PR)
				}
				if a.Detail != "" {
					line += "  " + a.Detail
				}
				ios.Printf("%s\n", line)
			}
			for _, w := range res.Warnings {
				ios.Errorf("warning: %s\n", w)
			}
		}
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	if err != nil {
		return &exitError{code: 1, msg: "hl bot run: " + err.Error()}
	}
	return nil
}
