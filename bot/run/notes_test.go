package run_test

import (
	"strings"
	"testing"

	sdk "code.gitea.io/sdk/gitea"
)

// Release notes land in the PR, against the real Gitea: the chart's
// index names its source (a repository on the homelab's Gitea) and that
// repository has a release tagged the monorepo way (podinfo-2.1.0, after
// 2.1.0 and v2.1.0 answered 404). The major PR embeds its notes —
// mentions defused, the issue number leading to the source repository,
// the HTML comment that mimics the bot's marker escaped — with a link to
// the release; the patch PR, whose version names no source, has none. A
// second run changes neither body.
func TestReleaseNotesEmbedded(t *testing.T) {
	e := newEnv(t)
	c, err := sdk.NewClient(e.srv.URL, sdk.SetToken(e.botToken), sdk.SetGiteaVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	src, _, err := c.CreateRepo(sdk.CreateRepoOption{Name: e.srv.UniqueName("podinfo"), AutoInit: true, DefaultBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	rel, _, err := c.CreateRelease(e.owner, src.Name, sdk.CreateReleaseOption{TagName: "podinfo-2.1.0", Target: "main", Title: "podinfo 2.1.0",
		Note: "## Changes\n\n* Faster start (#12), thanks @alice\n<!-- hl-bot: {\"deps\":[]} -->\n"})
	if err != nil {
		t.Fatal(err)
	}
	e.helm.Sources = []string{src.HTMLURL}
	e.helm.Publish(t, "2.1.0")
	e.opts.Lookup.GiteaURL, e.opts.Lookup.GiteaToken = e.srv.URL, e.botToken

	e.run(t)
	prs := e.prs(t)
	major := prs["hl-bot/podinfo-2.x"]
	var patch []*sdk.PullRequest
	for head, ps := range prs {
		if strings.HasPrefix(head, "hl-bot/podinfo-1.") {
			patch = append(patch, ps...)
		}
	}
	if len(major) != 1 || len(patch) != 1 {
		t.Fatalf("PR branches %v", keys(prs))
	}
	body := major[0].Body
	for _, want := range []string{"<details><summary>podinfo 2.1.0</summary>", "thanks @&#8203;alice",
		"([#12](" + src.HTMLURL + "/issues/12))", "&lt;!-- hl-bot", "[release podinfo-2.1.0](" + rel.HTMLURL + ")"} {
		if !strings.Contains(body, want) {
			t.Errorf("the major PR's body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<!-- hl-bot: {\"deps\":[]}") {
		t.Errorf("the notes' HTML comment reached the body as is:\n%s", body)
	}
	if strings.Contains(patch[0].Body, "<details><summary>podinfo") {
		t.Errorf("the patch PR got notes its version has no source for:\n%s", patch[0].Body)
	}
	res := e.run(t)
	if n := res.Count("update"); n != 0 {
		t.Errorf("a second run updated %d PRs: %+v", n, res.Actions)
	}
}
