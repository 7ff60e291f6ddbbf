package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"hl.dev/hl/bootstrap"
	"hl.dev/hl/internal/iostreams"
)

// envGiteaToken holds the Gitea access token for hl bootstrap gitea.
const envGiteaToken = "HL_GITEA_TOKEN"

type bootstrapGiteaOptions struct {
	Dir       string
	URL       string
	Owner     string
	Repo      string
	Branch    string
	BotUser   string
	TokenFile string
	AgeKey    string
	Adopt     bool
	DryRun    bool
}

func newBootstrapCmd(s *shared) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Seed the forge with the rendered repository",
	}
	cmd.AddCommand(newBootstrapGiteaCmd(s), newBootstrapClusterCmd(s))
	return cmd
}

func newBootstrapGiteaCmd(s *shared) *cobra.Command {
	opts := &bootstrapGiteaOptions{}
	cmd := &cobra.Command{
		Use:   "gitea",
		Short: "Create the Gitea repo, push the render, add deploy key, webhooks, bot and branch protection",
		Long: `Bootstrap the rendered repository (--dir) into Gitea, step by step:

  owner              the organisation (or your user namespace)
  repo               a private repository, marked with the topic hl-managed
  bot-user           the bot account
  bot-collaborator   the bot gets write access
  bot-token          its token (write:repository, write:issue, read:user),
                     stored SOPS-encrypted in platform/hl-bot/secrets/
  reader-user        Argo CD's read-only account (it clones over HTTP)
  reader-collaborator  read access
  reader-token       its token (read:repository), stored for Argo CD in
                     system/argocd/secrets/repo-creds.sops.yaml
  webhook-argocd     refresh on push, random secret stored SOPS-encrypted
  webhook-bot        the bot's run on merged PRs and dashboard edits
  webhook-woodpecker pipelines on push and pull request, likewise
  oauth-woodpecker   the OAuth application Woodpecker signs in with, its
                     client ID and secret stored in
                     platform/woodpecker/secrets/woodpecker-forge.sops.yaml
  labels             the labels the bot puts on its pull requests
  render             re-render so the pushed tree passes hl render --check
  push               the tree as the first commit of the default branch
  branch-protection  pull requests and Woodpecker's validate check required

Every step checks first and changes only what is missing, so a second run
reports "unchanged" everywhere and an interrupted run completes when re-run.
An existing non-empty repository hl did not create is refused unless
--adopt.

The token (a site administrator's: it creates the bot user) comes from
--token-file, $HL_GITEA_TOKEN, or a prompt on a terminal; it is never
printed. An age identity (--age-key, $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY) is
optional: with it, stored credentials are verified and reused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBootstrapGitea(cmd.Context(), s, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", ".", "the rendered repository (holds hl.yaml)")
	f.StringVar(&opts.URL, "url", "", "Gitea URL (default: hl.yaml spec.forge.url)")
	f.StringVar(&opts.Owner, "owner", "", "organisation or user (default: spec.forge.owner)")
	f.StringVar(&opts.Repo, "repo", "", "repository name (default: spec.forge.repo)")
	f.StringVar(&opts.Branch, "branch", "", "default branch (default: spec.forge.defaultBranch, else main)")
	f.StringVar(&opts.BotUser, "bot-user", bootstrap.DefaultBotUser, "name of the bot account")
	f.StringVar(&opts.TokenFile, "token-file", "", "read the Gitea token from this file (- for stdin) instead of $"+envGiteaToken)
	f.StringVar(&opts.AgeKey, "age-key", "", "age identity file to verify stored credentials (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY)")
	f.BoolVar(&opts.Adopt, "adopt", false, "manage an existing non-empty repository that hl did not create")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	return cmd
}

func runBootstrapGitea(ctx context.Context, s *shared, opts *bootstrapGiteaOptions) error {
	ios := s.ios
	token, err := s.token(tokenSource{What: "Gitea token", File: opts.TokenFile, Env: []string{envGiteaToken},
		Prompt: "Gitea access token (site administrator)"})
	if err != nil {
		return err
	}
	ids, err := s.identities(opts.AgeKey, false)
	if err != nil {
		return err
	}
	log, err := s.logger()
	if err != nil {
		return err
	}
	bopts := bootstrap.Options{
		Dir: opts.Dir, URL: opts.URL, Owner: opts.Owner, Repo: opts.Repo, Branch: opts.Branch,
		Token: token, BotUser: opts.BotUser, Adopt: opts.Adopt, DryRun: opts.DryRun, Identities: ids,
		Logger: log,
	}
	if !ios.JSON() {
		p := &stepPrinter{ios: ios, tty: ios.IsStdoutTTY()}
		bopts.Progress = p.print
	}
	res, err := bootstrap.Run(ctx, bopts)
	if res == nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if ios.JSON() {
		out := struct {
			*bootstrap.Result
			Error string `json:"error,omitempty"`
		}{Result: res}
		if err != nil {
			out.Error = err.Error()
		}
		if werr := ios.WriteJSON(out); werr != nil {
			return werr
		}
	} else {
		for _, w := range res.Warnings {
			fmt.Fprintln(ios.ErrOut, "warning:", w)
		}
		if err == nil {
			fmt.Fprintln(ios.ErrOut, bootstrapSummary(res))
		}
	}
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	return nil
}

// stepPrinter shows each step as it runs: on a terminal a pending line that
// the result replaces, otherwise one line per finished step.
type stepPrinter struct {
	ios *iostreams.IOStreams
	tty bool
}

var stepMarks = map[bootstrap.Status]string{
	bootstrap.StatusCreated:   "+",
	bootstrap.StatusUpdated:   "~",
	bootstrap.StatusUnchanged: "=",
	bootstrap.StatusPlanned:   "?",
	bootstrap.StatusSkipped:   "-",
	bootstrap.StatusFailed:    "!",
}

func (p *stepPrinter) print(s bootstrap.StepResult) {
	if s.Status == bootstrap.StatusRunning {
		if p.tty {
			fmt.Fprintf(p.ios.Out, "  %-19s ...", s.Name)
		}
		return
	}
	if p.tty {
		fmt.Fprint(p.ios.Out, "\r\033[K")
	}
	detail := s.Detail
	if s.Status == bootstrap.StatusFailed {
		detail = s.Error
	}
	status := string(s.Status)
	if s.Status == bootstrap.StatusPlanned {
		status = "would"
	}
	fmt.Fprintf(p.ios.Out, "%s %-19s %-9s %s\n", stepMarks[s.Status], s.Name, status, detail)
}

func bootstrapSummary(res *bootstrap.Result) string {
	counts := map[bootstrap.Status]int{}
	for _, s := range res.Steps {
		counts[s.Status]++
	}
	where := res.HTMLURL
	if where == "" {
		where = res.URL + "/" + res.Owner + "/" + res.Repo
	}
	if res.DryRun {
		return fmt.Sprintf("dry run for %s: %d steps would change, %d unchanged, %d skipped; nothing was changed",
			where, counts[bootstrap.StatusPlanned], counts[bootstrap.StatusUnchanged], counts[bootstrap.StatusSkipped])
	}
	return fmt.Sprintf("bootstrapped %s: %d created, %d updated, %d unchanged, %d skipped",
		where, counts[bootstrap.StatusCreated], counts[bootstrap.StatusUpdated], counts[bootstrap.StatusUnchanged], counts[bootstrap.StatusSkipped])
}
