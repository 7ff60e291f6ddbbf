package github_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/datasource/github"
	"hl.dev/hl/internal/httpx"
)

func TestReleasesPaginatedAndConditional(t *testing.T) {
	srv := datasourcetest.NewGitHub(t)
	var logs bytes.Buffer
	cache := httpx.NewCache(0)
	client := httpx.Client(httpx.Options{Cache: cache, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	const token = "ghp_secretTOKENvalue123"
	dep := bot.Dependency{Datasource: "github-releases", Package: "k3s-io/k3s"}

	var first []bot.Release
	for run := 0; run < 2; run++ {
		ds := github.New(client, srv.URL, token)
		ds.PerPage = 20
		rels, err := ds.Releases(context.Background(), dep)
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			first = rels
		} else if len(rels) != len(first) {
			t.Errorf("run 2 saw %d releases, run 1 %d", len(rels), len(first))
		}
	}
	// 46 fixtures, one a draft; 20 a page: 3 pages per run.
	if len(first) != 45 {
		t.Errorf("%d releases, want 45 (the draft dropped)", len(first))
	}
	if srv.Full.Load() != 3 || srv.NotModified.Load() != 3 {
		t.Errorf("full=%d notModified=%d, want 3 and 3 (second run all 304)", srv.Full.Load(), srv.NotModified.Load())
	}
	var rc, withDate int
	for _, r := range first {
		if r.Prerelease {
			rc++
		}
		if !r.ReleasedAt.IsZero() {
			withDate++
		}
		if !strings.HasPrefix(r.ReleaseNotesURL, "https://github.com/k3s-io/k3s/releases/tag/") {
			t.Errorf("notes url %q", r.ReleaseNotesURL)
		}
	}
	if rc != 3 || withDate != len(first) {
		t.Errorf("prereleases=%d dated=%d", rc, withDate)
	}
	for _, a := range srv.Auth {
		if a != "Bearer "+token {
			t.Errorf("Authorization %q", a)
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Error("token in logs")
	}
}

func TestErrors(t *testing.T) {
	srv := datasourcetest.NewGitHub(t)
	ds := github.New(httpx.Client(httpx.Options{}), srv.URL, "")
	if _, err := ds.Releases(context.Background(), bot.Dependency{Package: "nobody/nothing"}); err == nil {
		t.Error("404: want an error")
	}
	if _, err := ds.Releases(context.Background(), bot.Dependency{Package: "not-owner-repo"}); err == nil {
		t.Error("bad package: want an error")
	}
}
