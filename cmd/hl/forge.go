package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"hl.dev/hl/bot/forge"
	giteaforge "hl.dev/hl/bot/forge/gitea"
	githubforge "hl.dev/hl/bot/forge/github"
	"hl.dev/hl/bot/lookup"
	botrun "hl.dev/hl/bot/run"
	"hl.dev/hl/internal/config"
)

// forgeToken is the bot's forge token: HL_FORGE_TOKEN, else the
// forge-specific variable (HL_GITEA_TOKEN, GITHUB_TOKEN).
func forgeToken(h *config.Homelab) string {
	if t := os.Getenv("HL_FORGE_TOKEN"); t != "" {
		return t
	}
	if h.Spec.Forge.Type == config.ForgeGitHub {
		return os.Getenv("GITHUB_TOKEN")
	}
	return os.Getenv("HL_GITEA_TOKEN")
}

// newForge opens hl.yaml's forge: the one place the forge type is chosen.
func newForge(_ context.Context, h *config.Homelab) (forge.Forge, error) {
	f := h.Spec.Forge
	token := forgeToken(h)
	if token == "" {
		return nil, fmt.Errorf("no forge token: set HL_FORGE_TOKEN (or HL_GITEA_TOKEN / GITHUB_TOKEN)")
	}
	switch f.Type {
	case config.ForgeGitHub:
		api := ""
		if u := strings.TrimSuffix(f.URL, "/"); u != "" && u != config.DefaultGitHubURL {
			api = u + "/api/v3/" // GitHub Enterprise
		}
		return githubforge.New(githubforge.Options{APIURL: api, WebURL: f.URL, Token: token, Owner: f.Owner, Repo: f.Repo})
	default:
		return giteaforge.New(giteaforge.Options{URL: f.URL, Token: token, Owner: f.Owner, Repo: f.Repo})
	}
}

func init() {
	botNewForge = newForge
	botUpgradePass = func(ctx context.Context, h *config.Homelab, dryRun bool) error {
		fg, err := newForge(ctx, h)
		if err != nil {
			return err
		}
		lc := lookup.ConfigFromHomelab(h, lookup.Config{GitHubToken: os.Getenv("GITHUB_TOKEN"), GiteaToken: forgeToken(h)})
		_, err = botrun.Run(ctx, botrun.Options{Forge: fg, Base: h.Spec.Forge.DefaultBranch, Bot: h.Spec.Bot, Lookup: lc, DryRun: dryRun, Logger: slog.Default()})
		return err
	}
}
