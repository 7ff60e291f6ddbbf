package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/bot/lookup"
	botrun "hl.dev/hl/bot/run"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/iostreams"
)

type botRunOptions struct {
	Once     bool
	DryRun   bool
	Dir      string
	Config   string
	Timeout  time.Duration
	Insecure []string
	LogLevel string
}

func newBotRunCmd(ios *iostreams.IOStreams) *cobra.Command {
	opts := &botRunOptions{}
	cmd := &cobra.Command{
		Use:   "run --once",
		Short: "Open, update, rebase, close and automerge update PRs on the forge",
		Long: `One pass of the bot: clone the repo from spec.forge (or use --dir, a local
clone whose origin is the forge), find updates, and bring the forge's PRs and
the dependency dashboard issue in line. Safe to kill and re-run.

The token comes from HL_GITEA_TOKEN or HL_FORGE_TOKEN; it is never logged.
Exits non-zero when any branch or PR failed.`,
		Example: `  hl bot run --once --dry-run
  hl bot run --once --dir ~/src/homelab`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !opts.Once {
				return &exitError{code: 2, msg: "hl bot run: only --once is supported (the daemon is `hl bot serve`)"}
			}
			return runBotRun(cmd.Context(), ios, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Once, "once", false, "do one pass and exit")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print what would be done; push and write nothing")
	f.StringVar(&opts.Dir, "dir", "", "work in this local clone instead of cloning")
	f.StringVar(&opts.Config, "config", "", "hl.yaml (default: DIR/hl.yaml or ./hl.yaml)")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Minute, "give up after this long")
	f.StringSliceVar(&opts.Insecure, "insecure-registry", nil, "OCI registries spoken to over plain HTTP (host:port)")
	f.StringVar(&opts.LogLevel, "log-level", "info", "log level on stderr: debug (with each phase's duration), info, warn or error")
	return cmd
}

func runBotRun(ctx context.Context, ios *iostreams.IOStreams, opts *botRunOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfgPath := opts.Config
	if cfgPath == "" {
		cfgPath = filepath.Join(opts.Dir, "hl.yaml")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.LogLevel)); err != nil {
		return &exitError{code: 2, msg: "hl bot run: --log-level: " + err.Error()}
	}
	doc, _, err := config.Load(cfgPath)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	h := doc.Homelab
	token := forgeToken(h)
	fg, err := newForge(ctx, h)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	lc := lookup.ConfigFromHomelab(h, lookup.Config{
		GitHubToken: os.Getenv("GITHUB_TOKEN"), GiteaToken: token, InsecureRegistries: opts.Insecure,
	})
	res, err := botrun.Run(ctx, botrun.Options{
		Forge: fg, Base: h.Spec.Forge.DefaultBranch, Dir: opts.Dir, Bot: h.Spec.Bot, Lookup: lc, DryRun: opts.DryRun,
		Logger: slog.New(slog.NewTextHandler(ios.ErrOut, &slog.HandlerOptions{Level: level})),
	})
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
	if err != nil {
		return &exitError{code: 1, msg: "hl bot run: " + err.Error()}
	}
	return nil
}
