package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/wizard"
)

type initOptions struct {
	Out        string
	Config     string
	AgeKey     string
	Defaults   bool
	Accessible bool
	Bootstrap  bool
	NoRender   bool
}

func newInitCmd(s *shared) *cobra.Command {
	ios := s.ios
	opts := &initOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write hl.yaml with a guided form and render the repo",
		Long: `Ask for everything hl.yaml needs (basics, network, nodes, OS, apps, forge,
secrets, bot), check every answer with the rules of hl config validate,
show a review, then write hl.yaml into --out and render the repo there.

Re-running hl init where an hl.yaml exists edits it: answers are prefilled
and comments and sections the form does not ask about are kept.

Secrets are encrypted for your own age identity: hl init generates one into
$XDG_CONFIG_HOME/hl/age.key (or --age-key FILE), or reuses the file that is
already there; it never overwrites one.

Without a terminal on stdin (or with --accessible, or ACCESSIBLE set) the
form runs as plain line-by-line prompts, for screen readers and scripts.
--defaults asks nothing: it takes the embedded example (or --config FILE,
or the existing hl.yaml) with your own identity.`,
		Example: `  hl init                          # guided form in the current folder
  hl init --out ~/homelab          # write ~/homelab/hl.yaml and render there
  hl init --defaults --out demo    # the example homelab, no questions
  hl init --accessible < answers   # plain prompts, answers from a file`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(cmd.Context(), ios, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", ".", "folder for hl.yaml and the rendered repo")
	f.StringVar(&opts.Config, "config", "", "prefill the answers from this hl.yaml (default: --out's hl.yaml if it exists)")
	f.StringVar(&opts.AgeKey, "age-key", "", "age identity file (default $XDG_CONFIG_HOME/hl/age.key; reused if it exists, never overwritten)")
	f.BoolVar(&opts.Defaults, "defaults", false, "ask nothing: take the embedded example (or --config / the existing hl.yaml) as it is")
	f.BoolVar(&opts.Accessible, "accessible", false, "plain line-by-line prompts (screen readers, piped input); automatic without a terminal")
	f.BoolVar(&opts.Bootstrap, "bootstrap", false, "after rendering, bootstrap the repo into Gitea (not built in yet: prints the command)")
	f.BoolVar(&opts.NoRender, "no-render", false, "write hl.yaml (and the age identity) only")
	return cmd
}

func runInit(ctx context.Context, ios *iostreams.IOStreams, opts *initOptions) error {
	accessible := opts.Accessible || !ios.IsStdinTTY() || !ios.IsStdoutTTY() || os.Getenv("ACCESSIBLE") != ""
	res, err := wizard.Init(ctx, wizard.InitOptions{
		Dir:            opts.Out,
		ConfigFile:     opts.Config,
		Defaults:       opts.Defaults,
		Accessible:     accessible,
		AgeKey:         opts.AgeKey,
		Bootstrap:      opts.Bootstrap,
		NoRender:       opts.NoRender,
		In:             ios.In,
		Out:            ios.Out,
		ErrOut:         ios.ErrOut,
		Env:            wizard.DetectEnv(),
		BootstrapGitea: bootstrapGiteaHook(ios),
	})
	var (
		invalid *wizard.InvalidError
		cerr    *generator.ConfigError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wizard.ErrAborted), errors.Is(err, wizard.ErrInputEnded):
		return &exitError{code: 1, msg: err.Error()}
	case errors.As(err, &invalid):
		printProblems(ios, invalid.Problems)
		return &exitError{code: 1, msg: err.Error()}
	case errors.As(err, &cerr):
		printProblems(ios, cerr.Problems)
		return &exitError{code: 1, msg: "hl.yaml is invalid; nothing rendered"}
	case errors.Is(err, generator.ErrConflict):
		return &exitError{code: 3, msg: err.Error()}
	case res != nil && res.Written:
		return &exitError{code: 1, msg: fmt.Sprintf("wrote %s, but: %v", res.Path, err)}
	}
	return &exitError{code: 1, msg: err.Error()}
}

func printProblems(ios *iostreams.IOStreams, probs config.Problems) {
	for _, p := range probs {
		fmt.Fprintln(ios.ErrOut, p.String())
	}
}

// bootstrapGiteaHook is where hl init hands over to Gitea bootstrapping
// (creating the org/repo and pushing) once the bootstrap package exists.
// Until then it only tells the user the command to run.
func bootstrapGiteaHook(ios *iostreams.IOStreams) func(context.Context, string, *config.Homelab) error {
	return func(_ context.Context, _ string, _ *config.Homelab) error {
		fmt.Fprintln(ios.Out, "bootstrap: run hl bootstrap gitea")
		return nil
	}
}
