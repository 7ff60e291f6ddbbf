package gitea_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"

	sdk "code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/gitea"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/internal/httpx"
)

func TestMain(m *testing.M) { testserver.Main(m) }

// TestReleasesFromRealGitea creates a private repo and releases through
// the SDK, then lists them as the bot does (paginated, drafts dropped,
// pre-releases flagged).
func TestReleasesFromRealGitea(t *testing.T) {
	srv := testserver.ForTest(t)
	admin, err := sdk.NewClient(srv.URL, sdk.SetToken(srv.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	org := srv.UniqueName("botds")
	if _, _, err := admin.CreateOrg(sdk.CreateOrgOption{Name: org, Visibility: sdk.VisibleTypePrivate}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.CreateOrgRepo(org, sdk.CreateRepoOption{Name: "tool", Private: true, AutoInit: true, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 0; i < 55; i++ { // more than one page of 50
		tag := fmt.Sprintf("v1.%d.0", i)
		opt := sdk.CreateReleaseOption{TagName: tag, Target: "main", Title: tag, Note: "notes"}
		switch i {
		case 53:
			opt.IsPrerelease = true
		case 54:
			opt.IsDraft = true
		}
		if _, _, err := admin.CreateRelease(org, "tool", opt); err != nil {
			t.Fatalf("create %s: %v", tag, err)
		}
		if i != 54 {
			want = append(want, tag)
		}
	}

	var logs bytes.Buffer
	hc := httpx.Client(httpx.Options{Cache: httpx.NewCache(0), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ds := gitea.New(hc, srv.URL, srv.AdminToken)
	rels, err := ds.Releases(context.Background(), bot.Dependency{Datasource: "gitea-releases", Package: org + "/tool"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	pre := 0
	for _, r := range rels {
		got = append(got, r.Version)
		if r.Prerelease {
			pre++
		}
		if r.ReleasedAt.IsZero() || !strings.HasPrefix(r.ReleaseNotesURL, srv.URL) {
			t.Errorf("%s: %+v", r.Version, r)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") || pre != 1 {
		t.Errorf("releases = %d (%d pre), want %d", len(got), pre, len(want))
	}
	if strings.Contains(logs.String(), srv.AdminToken) {
		t.Error("token in logs")
	}

	// Private repo: without the token the release list is not found.
	anon := gitea.New(hc, "", "")
	if _, err := anon.Releases(context.Background(), bot.Dependency{Package: org + "/tool", RegistryURL: srv.URL}); err == nil {
		t.Error("anonymous access to a private repo: want an error")
	}
	// The token is only sent to the configured forge.
	other := gitea.New(hc, "https://elsewhere.example.org", srv.AdminToken)
	if _, err := other.Releases(context.Background(), bot.Dependency{Package: org + "/tool", RegistryURL: srv.URL}); err == nil {
		t.Error("token leaked to a host that is not the forge")
	}
}
