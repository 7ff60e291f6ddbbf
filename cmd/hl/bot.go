package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/extract"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/internal/config"
)

// newBotCmd is the parent of the bot's verbs; each verb is its own
// constructor added here.
func newBotCmd(s *shared) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bot",
		Short: "Keep the repo up to date: find pinned versions, look up releases, open PRs",
		Long: `hl bot keeps a GitOps repo up to date the way Renovate does: extractors find
pinned versions (Chart.yaml dependencies, Argo CD Helm sources, images in values
and manifests, k3s versions, OS netboot images), datasources list releases
(Helm repositories, OCI registries, GitHub and Gitea releases, the k3s channel,
Debian netboot trees) and versioning schemes pick the updates.`,
	}
	cmd.AddCommand(newBotScanCmd(s), newBotServeCmd(s), newBotRunCmd(s))
	return cmd
}

type botScanOptions struct {
	Dir         string
	Config      string
	Updates     bool
	Managers    []string
	Concurrency int
	Timeout     time.Duration
}

func newBotScanCmd(s *shared) *cobra.Command {
	opts := &botScanOptions{}
	cmd := &cobra.Command{
		Use:   "scan [DIR]",
		Short: "List every pinned dependency in a repo (any repo, not only hl's)",
		Long: `List every pinned version the bot can update, with its file and line (-o json
adds the byte range the bot edits).

With --updates, also look each dependency up and list the updates the bot
would propose (the newest, and the newest within the current major when they
differ), honouring hl.yaml's spec.mirrors and spec.bot (ignore rules, minimum
release age). Tokens come from GITHUB_TOKEN and HL_GITEA_TOKEN.`,
		Example: `  hl bot scan
  hl bot scan ~/src/homelab -o json
  hl bot scan --updates`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			return runBotScan(cmd.Context(), s, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Config, "config", "", "hl.yaml with spec.mirrors and spec.bot (default: DIR/hl.yaml when present)")
	f.BoolVar(&opts.Updates, "updates", false, "look up releases and list the updates instead of the dependencies")
	f.StringSliceVar(&opts.Managers, "manager", nil, "only these extractors ("+strings.Join(extract.Names(), ", ")+")")
	f.IntVar(&opts.Concurrency, "concurrency", 8, "parallel lookups (with --updates)")
	f.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "give up on lookups after this long (with --updates)")
	return cmd
}

func runBotScan(ctx context.Context, s *shared, opts *botScanOptions) error {
	ios := s.ios
	exts, err := selectExtractors(opts.Managers)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if opts.Updates {
		return runBotUpdates(ctx, s, opts, exts)
	}
	deps, problems, err := extract.Scan(ctx, opts.Dir, extract.Options{Extractors: exts})
	if err != nil {
		return err
	}
	for _, p := range problems {
		ios.Errorf("warning: %s: %s\n", p.File, p.Message)
	}
	if ios.JSON() {
		if deps == nil {
			deps = []bot.Dependency{}
		}
		return ios.WriteJSON(deps)
	}
	w := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FILE\tMANAGER\tDATASOURCE\tPACKAGE\tCURRENT")
	for _, d := range deps {
		fmt.Fprintf(w, "%s:%d\t%s\t%s\t%s\t%s\n", d.File, d.Line, d.Manager, d.Datasource, d.Package, d.Current)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if ios.IsStdoutTTY() {
		ios.Printf("%d dependencies\n", len(deps))
	}
	return nil
}

func runBotUpdates(ctx context.Context, s *shared, opts *botScanOptions, exts []extract.Extractor) error {
	ios := s.ios
	log, err := s.logger()
	if err != nil {
		return err
	}
	cfg := lookup.Config{
		Extractors:  exts,
		Concurrency: opts.Concurrency,
		GitHubToken: os.Getenv("GITHUB_TOKEN"),
		GiteaToken:  os.Getenv("HL_GITEA_TOKEN"),
		Logger:      log,
	}
	cfgPath := opts.Config
	if cfgPath == "" {
		if p := filepath.Join(opts.Dir, config.FileName); fileExists(p) {
			cfgPath = p
		}
	}
	if cfgPath != "" {
		h, err := s.homelab(cfgPath)
		if err != nil {
			return err
		}
		cfg = lookup.ConfigFromHomelab(h, cfg)
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	updates, warnings, err := lookup.FindUpdates(ctx, opts.Dir, cfg)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		ios.Errorf("warning: %s\n", w)
	}
	if ios.JSON() {
		if updates == nil {
			updates = []bot.Update{}
		}
		return ios.WriteJSON(updates)
	}
	w := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FILE\tPACKAGE\tCURRENT\tNEW\tTYPE")
	for _, u := range updates {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.Dependency.File, u.Dependency.Package, u.Dependency.Current, u.NewValue, u.Type)
	}
	return w.Flush()
}

func selectExtractors(names []string) ([]extract.Extractor, error) {
	if len(names) == 0 {
		return nil, nil
	}
	byName := map[string]extract.Extractor{}
	for _, e := range extract.All() {
		byName[e.Name()] = e
	}
	var out []extract.Extractor
	for _, n := range names {
		e, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--manager %q: unknown (have %s)", n, strings.Join(extract.Names(), ", "))
		}
		out = append(out, e)
	}
	return out, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, os.ErrNotExist)
}
