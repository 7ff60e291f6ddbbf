package run_test

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot/datasource/datasourcetest"
	giteaforge "hl.dev/hl/bot/forge/gitea"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/bot/run"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/gitea/testserver"
)

// TestMixedRepository is issue 20's acceptance: a repository hl did not
// write (testdata/bot/repos/homelab-mixed: a Dockerfile with an ARG used
// in FROM, a compose file, a Gitea Actions workflow, an Argo CD git
// source, a Chart.yaml repository named by alias and a linuxserver-style
// tag) gets one PR per package and major, each changing exactly the
// pinned bytes. Every version comes from a real server: images from the
// in-process OCI registry (through a spec.mirrors entry for the
// fixture's registry.example), the chart from a Helm repository the helm
// SDK indexed (through spec.bot.helmRepositories), action and git source
// tags from Gitea's ref advertisement (the fixture's https://git.example/
// is replaced by the test Gitea's URL).
func TestMixedRepository(t *testing.T) {
	ctx := context.Background()
	e := &env{}
	e.srv = testserver.ForTest(t)
	u, err := e.srv.CreateUser(ctx, e.srv.UniqueName("bot"))
	if err != nil {
		t.Fatal(err)
	}
	e.owner, e.name, e.botToken = u.Name, e.srv.UniqueName("mixed"), u.Token
	if e.admin, err = sdk.NewClient(e.srv.URL, sdk.SetToken(e.srv.AdminToken), sdk.SetGiteaVersion("")); err != nil {
		t.Fatal(err)
	}
	botc, err := sdk.NewClient(e.srv.URL, sdk.SetToken(u.Token), sdk.SetGiteaVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := botc.CreateRepo(sdk.CreateRepoOption{Name: e.name, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}

	// Git hosts: the action and the Argo CD source, with their tags.
	prefix := e.srv.UniqueName("m")
	gitBase := e.srv.URL + "/" + prefix + "-"
	for org, tags := range map[string]map[string][]string{
		"actions": {"checkout": {"v3", "v4", "v4.1.7", "v5"}},
		"ops":     {"media": {"v1.4.2", "v1.5.0", "v2.0.0", "v2.1.0-rc.1"}},
	} {
		if _, _, err := e.admin.CreateOrg(sdk.CreateOrgOption{Name: prefix + "-" + org, Visibility: sdk.VisibleTypePublic}); err != nil {
			t.Fatal(err)
		}
		for repo, ts := range tags {
			if _, _, err := e.admin.CreateOrgRepo(prefix+"-"+org, sdk.CreateRepoOption{Name: repo, AutoInit: true, DefaultBranch: "main"}); err != nil {
				t.Fatal(err)
			}
			for _, tag := range ts {
				if _, _, err := e.admin.CreateTag(prefix+"-"+org, repo, sdk.CreateTagOption{TagName: tag, Target: "main"}); err != nil {
					t.Fatalf("tag %s/%s %s: %v", org, repo, tag, err)
				}
			}
		}
	}
	reg := datasourcetest.NewRegistry(t, "", "")
	for repo, tags := range map[string][]string{
		"library/golang":       {"1.22.3-alpine", "1.22.5-alpine", "1.23.0-alpine", "1.23.0"},
		"library/alpine":       {"3.19.1", "3.20.3", "latest"},
		"linuxserver/jellyfin": {"10.8.13-ls219", "10.8.13-ls220", "10.9.0-ls1", "latest", "version-10.9.0"},
		"library/postgres":     {"16.2", "16.4", "17.0", "17.0-alpine"},
		"library/node":         {"20.11.1", "20.12.2", "21.0.0-rc1"},
	} {
		reg.PushImage(t, repo, tags...)
	}
	charts := datasourcetest.NewHelmRepo(t, map[string][]string{"redis": {"18.6.1", "18.7.0"}})

	// The fixture repository, with the test's git host.
	files := map[string]string{}
	src := filepath.Join("..", "..", "testdata", "bot", "repos", "homelab-mixed")
	if err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(src, p)
		files[filepath.ToSlash(rel)] = strings.ReplaceAll(string(b), "https://git.example/", gitBase)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.push(t, u.Name, u.Token, files, "initial")
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.srv.WaitPushed(wctx, e.owner, e.name); err != nil {
		t.Fatal(err)
	}
	f, err := giteaforge.New(giteaforge.Options{URL: e.srv.URL, Token: u.Token, Owner: e.owner, Repo: e.name, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h := &config.Homelab{Spec: config.Spec{
		Mirrors: config.Mirrors{Registries: []config.Mirror{{From: "registry.example", To: reg.Host}}},
		Bot: config.Bot{
			Rules: []config.Rule{{Packages: []string{"*/linuxserver/*"},
				Versioning: `regex:^(?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)-ls(?<build>\d+)$`}},
			HelmRepositories: map[string]string{"charts": charts.URL},
		},
	}}
	e.opts = run.Options{
		Forge:       f,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Bot:         h.Spec.Bot,
		Lookup:      lookup.ConfigFromHomelab(h, lookup.Config{InsecureRegistries: []string{reg.Host}, Retries: 1, Backoff: 10 * time.Millisecond}),
		NoChartDiff: true,
	}
	res := e.run(t)
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}

	type want struct{ file, old, new string }
	wants := map[string]want{
		"hl-bot/library-golang-1.x":                  {"Dockerfile", "golang:1.22.3-alpine", "golang:1.23.0-alpine"},
		"hl-bot/library-alpine-3.x":                  {"Dockerfile", "ALPINE_VERSION=3.19.1", "ALPINE_VERSION=3.20.3"},
		"hl-bot/linuxserver-jellyfin-10.x":           {"compose.yaml", "jellyfin:10.8.13-ls219", "jellyfin:10.9.0-ls1"},
		"hl-bot/library-postgres-16.x":               {"compose.yaml", "postgres:16.2", "postgres:16.4"},
		"hl-bot/library-postgres-17.x":               {"compose.yaml", "postgres:16.2", "postgres:17.0"},
		"hl-bot/library-node-20.x":                   {".gitea/workflows/ci.yaml", "node:20.11.1", "node:20.12.2"},
		"hl-bot/" + prefix + "-actions-checkout-5.x": {".gitea/workflows/ci.yaml", "checkout@v4", "checkout@v5"},
		"hl-bot/" + prefix + "-ops-media-1.x":        {"apps/media/application.yaml", "targetRevision: v1.4.2", "targetRevision: v1.5.0"},
		"hl-bot/" + prefix + "-ops-media-2.x":        {"apps/media/application.yaml", "targetRevision: v1.4.2", "targetRevision: v2.0.0"},
		"hl-bot/redis-18.x":                          {"apps/cache/Chart.yaml", "version: 18.6.1", "version: 18.7.0"},
	}
	prs := e.prs(t)
	for head, w := range wants {
		if len(prs[head]) != 1 {
			t.Errorf("%s: %d PRs", head, len(prs[head]))
			continue
		}
		assertMinimalDiff(t, files[w.file], e.file(t, head, w.file), w.old, w.new)
	}
	for head := range prs {
		if _, ok := wants[head]; !ok {
			t.Errorf("unexpected PR branch %s", head)
		}
	}
}
