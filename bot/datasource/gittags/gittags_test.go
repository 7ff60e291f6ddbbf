package gittags_test

import (
	"context"
	"strings"
	"testing"

	sdk "code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/gittags"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/internal/httpx"
)

func TestMain(m *testing.M) { testserver.Main(m) }

// TestTagsFromRealGitea reads the ref advertisement of a real Gitea
// repository: lightweight and annotated tags (peeled entries dropped),
// branches ignored, the token sent only to the forge's host.
func TestTagsFromRealGitea(t *testing.T) {
	srv := testserver.ForTest(t)
	admin, err := sdk.NewClient(srv.URL, sdk.SetToken(srv.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	org := srv.UniqueName("gittags")
	if _, _, err := admin.CreateOrg(sdk.CreateOrgOption{Name: org, Visibility: sdk.VisibleTypePrivate}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.CreateOrgRepo(org, sdk.CreateRepoOption{Name: "deploy", Private: true, AutoInit: true, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
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
