package gittags_test

import (
	"context"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/datasource/gitea"
	"hl.dev/hl/bot/datasource/github"
	"hl.dev/hl/bot/datasource/gittags"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/internal/httpx"
)

func TestMain(m *testing.M) { testserver.Main(m) }

// TestTagsFromRealGitea reads the ref advertisement of a real Gitea
// repository: lightweight and annotated tags (peeled entries dropped),
// branches ignored, the token sent only to the forge's host.
func TestTagsFromRealGitea(t *testing.T) {
	srv, admin, org := privateRepo(t, "gittags")
	for _, tag := range []string{"v1.0.0", "v1.1.0", "v2.0.0"} {
		msg := ""
		if tag == "v1.1.0" {
			msg = "annotated" // an annotated tag adds a peeled ^{} entry
		}
		if _, _, err := admin.CreateTag(org, "deploy", sdk.CreateTagOption{TagName: tag, Target: "main", Message: msg}); err != nil {
			t.Fatalf("tag %s: %v", tag, err)
		}
	}
	hc := httpx.Client(httpx.Options{})
	repo := srv.URL + "/" + org + "/deploy.git"
	ds := gittags.New(hc, srv.URL, srv.AdminToken)
	rels, err := ds.Releases(context.Background(), bot.Dependency{Datasource: gittags.Name, Package: repo})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rels {
		got = append(got, r.Version)
		if r.SourceURL != srv.URL+"/"+org+"/deploy" || !r.ReleasedAt.IsZero() {
			t.Errorf("%s: %+v", r.Version, r)
		}
	}
	if strings.Join(got, " ") != "v1.0.0 v1.1.0 v2.0.0" {
		t.Errorf("tags = %v", got)
	}
	// A private repository is not readable without the token, and the
	// token goes only to the forge hl.yaml names.
	for name, ds := range map[string]*gittags.Datasource{
		"anonymous":  gittags.New(hc, "", ""),
		"other host": gittags.New(hc, "https://elsewhere.example.org", srv.AdminToken),
	} {
		if _, err := ds.Releases(context.Background(), bot.Dependency{Package: repo}); err == nil {
			t.Errorf("%s: read a private repository", name)
		} else if strings.Contains(err.Error(), srv.AdminToken) {
			t.Errorf("%s: token in error", name)
		}
	}
	if _, err := ds.Releases(context.Background(), bot.Dependency{Package: "git@host:o/r.git"}); err == nil || !strings.Contains(err.Error(), "not an http(s) git URL") {
		t.Errorf("ssh URL: %v", err)
	}
}

// TestReleaseTimes: a tag's release time under a minimum release age is
// its release's, asked of the forge hosting the repository: the homelab's
// real Gitea (a release's time; a bare tag has none) and github.com
// through the recorded API. A repository on any other host gets no
// request and no time.
func TestReleaseTimes(t *testing.T) {
	srv, admin, org := privateRepo(t, "times")
	before := time.Now().Add(-time.Minute)
	if _, _, err := admin.CreateRelease(org, "deploy", sdk.CreateReleaseOption{TagName: "v1.0.0", Target: "main", Title: "v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.CreateTag(org, "deploy", sdk.CreateTagOption{TagName: "v1.1.0", Target: "main"}); err != nil {
		t.Fatal(err)
	}
	gh := datasourcetest.NewGitHub(t)
	hc := httpx.Client(httpx.Options{})
	ds := gittags.New(hc, srv.URL, srv.AdminToken)
	ds.GitHub = github.New(hc, gh.URL, "gh-token")
	ds.Forge = gitea.New(hc, srv.URL, srv.AdminToken)
	repo := srv.URL + "/" + org + "/deploy.git"
	for _, tt := range []struct {
		repo, tag string
		want      func(time.Time) bool
	}{
		{repo, "v1.0.0", func(t time.Time) bool { return t.After(before) && t.Before(time.Now().Add(time.Minute)) }},
		{repo, "v1.1.0", time.Time.IsZero},
		{"https://github.com/k3s-io/k3s", "v1.31.6+k3s1", func(t time.Time) bool { return t.Equal(time.Date(2024, 4, 25, 20, 0, 0, 0, time.UTC)) }},
		{"https://github.com/k3s-io/k3s.git", "v9.9.9", time.Time.IsZero},
		{"https://git.elsewhere.example/o/r.git", "v1.0.0", time.Time.IsZero},
	} {
		got, err := ds.ReleasedAt(context.Background(), bot.Dependency{Package: tt.repo}, tt.tag)
		if err != nil || !tt.want(got) {
			t.Errorf("%s %s: %v %v", tt.repo, tt.tag, got, err)
		}
	}
	if n := gh.Tags.Load(); n != 2 {
		t.Errorf("%d GitHub requests by tag, want 2", n)
	}
	for _, a := range gh.Auth {
		if a != "Bearer gh-token" {
			t.Errorf("GitHub saw Authorization %q", a)
		}
	}
}

// privateRepo starts the test's Gitea and creates a private repository
// deploy (with a first commit on main) in a new private organisation.
func privateRepo(t *testing.T, prefix string) (*testserver.Server, *sdk.Client, string) {
	t.Helper()
	srv := testserver.ForTest(t)
	admin, err := sdk.NewClient(srv.URL, sdk.SetToken(srv.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	org := srv.UniqueName(prefix)
	if _, _, err := admin.CreateOrg(sdk.CreateOrgOption{Name: org, Visibility: sdk.VisibleTypePrivate}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.CreateOrgRepo(org, sdk.CreateRepoOption{Name: "deploy", Private: true, AutoInit: true, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	return srv, admin, org
}
