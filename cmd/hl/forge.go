package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/forge"
	giteaforge "hl.dev/hl/bot/forge/gitea"
	githubforge "hl.dev/hl/bot/forge/github"
	"hl.dev/hl/bot/lookup"
	botrun "hl.dev/hl/bot/run"
	"hl.dev/hl/internal/config"
)

// forgeTokenEnv are the variables the bot's forge token is read from:
// HL_FORGE_TOKEN, else the forge's own (HL_GITEA_TOKEN, GITHUB_TOKEN).
func forgeTokenEnv(h *config.Homelab) []string {
	if h.Spec.Forge.Type == config.ForgeGitHub {
		return []string{"HL_FORGE_TOKEN", "GITHUB_TOKEN"}
	}
	return []string{"HL_FORGE_TOKEN", "HL_GITEA_TOKEN"}
}

// openForge opens hl.yaml's forge with the bot's token (--token-file, else
// the variables of forgeTokenEnv): the one place the forge type is chosen.
// It returns the token too, for the Gitea releases datasource.
func (s *shared) openForge(h *config.Homelab, tokenFile string) (forge.Forge, string, error) {
	token, err := s.token(tokenSource{What: "forge token", File: tokenFile, Env: forgeTokenEnv(h)})
	if err != nil {
		return nil, "", err
	}
	log, err := s.logger()
	if err != nil {
		return nil, "", err
	}
	f := h.Spec.Forge
	var fg forge.Forge
	switch f.Type {
	case config.ForgeGitHub:
		api := ""
		if u := strings.TrimSuffix(f.URL, "/"); u != "" && u != config.DefaultGitHubURL {
			api = u + "/api/v3/" // GitHub Enterprise
		}
		fg, err = githubforge.New(githubforge.Options{APIURL: api, WebURL: f.URL, Token: token, Owner: f.Owner, Repo: f.Repo, Logger: log})
	default:
		fg, err = giteaforge.New(giteaforge.Options{URL: f.URL, Token: token, Owner: f.Owner, Repo: f.Repo, Logger: log})
	}
	if err != nil {
		return nil, "", &exitError{code: 1, msg: err.Error()}
	}
	return fg, token, nil
}

// upgradeOptions tune one upgrade pass.
type upgradeOptions struct {
	DryRun   bool
	Dir      string   // a local clone to work in ("": a temporary one)
	Insecure []string // OCI registries spoken to over plain HTTP
	Lookup   lookup.Config
}

// upgradePass runs the upgrade pass of hl bot run and hl bot serve.
func (s *shared) upgradePass(ctx context.Context, h *config.Homelab, fg forge.Forge, token string, o upgradeOptions) (*botrun.Result, error) {
	log, err := s.logger()
	if err != nil {
		return nil, err
	}
	lc := o.Lookup
	lc.GitHubToken, lc.GiteaToken, lc.InsecureRegistries, lc.Logger = os.Getenv("GITHUB_TOKEN"), token, o.Insecure, log
	return botrun.Run(ctx, botrun.Options{
		Forge: fg, Base: h.Spec.Forge.DefaultBranch, Dir: o.Dir, Bot: h.Spec.Bot, DryRun: o.DryRun, Logger: log,
		Lookup: lookup.ConfigFromHomelab(h, lc),
	})
}

// Where the deployed bot finds its repository: the rendered Deployment
// sets these (hl.yaml is then the one in that repository).
const (
	envForgeType   = "HL_FORGE_TYPE"
	envForgeURL    = "HL_FORGE_URL"
	envForgeOwner  = "HL_FORGE_OWNER"
	envForgeRepo   = "HL_FORGE_REPO"
	envForgeBranch = "HL_FORGE_BRANCH"
)

// botHomelab is hl.yaml from a file, or — without one — only the forge
// coordinates of the environment, enough to clone the repository whose
// hl.yaml says the rest.
func (s *shared) botHomelab(path string) (*config.Homelab, error) {
	if path != "" {
		return s.homelab(path)
	}
	f := config.Forge{Type: os.Getenv(envForgeType), URL: os.Getenv(envForgeURL), Owner: os.Getenv(envForgeOwner),
		Repo: os.Getenv(envForgeRepo), DefaultBranch: os.Getenv(envForgeBranch)}
	if f.URL == "" || f.Owner == "" || f.Repo == "" {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("no hl.yaml: pass --config FILE, or set $%s, $%s and $%s to the repository the bot manages", envForgeURL, envForgeOwner, envForgeRepo)}
	}
	if f.Type == "" {
		f.Type = config.ForgeGitea
	}
	return &config.Homelab{Spec: config.Spec{Forge: f}}, nil
}

// loadFromRepo clones the managed repository's default branch and loads
// its hl.yaml; done removes the clone.
func loadFromRepo(ctx context.Context, fg forge.Forge, branch string) (*config.Homelab, string, func(), error) {
	repo, err := engine.Open(ctx, engine.Options{Forge: fg, Base: branch})
	if err != nil {
		return nil, "", nil, err
	}
	doc, _, err := config.Load(filepath.Join(repo.Dir, config.FileName))
	if err != nil {
		repo.Close()
		return nil, "", nil, fmt.Errorf("the repository's %s: %w", config.FileName, err)
	}
	return doc.Homelab, repo.Dir, func() { repo.Close() }, nil
}
