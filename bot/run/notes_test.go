package run_test

import (
	"strings"
	"testing"

	sdk "code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/internal/fixture"
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
	src, rel := e.release(t, "podinfo", sdk.CreateReleaseOption{TagName: "podinfo-2.1.0", Title: "podinfo 2.1.0",
		Note: "## Changes\n\n* Faster start (#12), thanks @alice\n<!-- hl-bot: {\"deps\":[]} -->\n"})
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

// An image's release notes come through its org.opencontainers.image.source
// label: the new tag's config names a repository on the homelab's Gitea
// (as a clone URL), whose release v1.1.0 lands in the PR with a source
// link. An OCI chart's come through the annotation helm push writes from
// the chart's sources (release podinfo-1.1.0, the monorepo tag). The label is read once per digest: a second run with the same
// cache directory GETs no manifest by digest, and changes no body.
// Against the real Gitea and an in-process registry.
func TestReleaseNotesForImages(t *testing.T) {
	e := newEnv(t)
	src, _ := e.release(t, "cli", sdk.CreateReleaseOption{TagName: "v1.1.0", Title: "cli 1.1.0", Note: "* Reads the new config format\n"})
	reg := datasourcetest.NewRegistry(t, "", "")
	reg.PushImage(t, "tools/cli", "1.0.0")
	reg.PushImageSource(t, "tools/cli", src.CloneURL, false, "1.1.0")
	// A chart in a registry: helm push wrote its first source into the
	// manifest's annotation.
	chartSrc, _ := e.release(t, "podinfo", sdk.CreateReleaseOption{TagName: "podinfo-1.1.0", Title: "podinfo chart 1.1.0", Note: "* Smaller defaults\n"})
	fixture.PushPodinfoOCI(t, reg.Host, "charts", "1.0.0")
	fixture.PushPodinfoOCIFrom(t, reg.Host, "charts", []string{chartSrc.HTMLURL}, "1.1.0")
	e.push(t, e.owner, e.botToken, map[string]string{
		"apps/tools/Dockerfile": "FROM " + reg.Host + "/tools/cli:1.0.0\n",
		"apps/edge/Chart.yaml":  "apiVersion: v2\nname: edge\nversion: 0.1.0\ndependencies:\n  - name: podinfo\n    version: 1.0.0\n    repository: oci://" + reg.Host + "/charts\n",
	}, "a Dockerfile and a chart from a registry")
	e.opts.Lookup.InsecureRegistries = append(e.opts.Lookup.InsecureRegistries, reg.Host)
	e.opts.Lookup.GiteaURL, e.opts.Lookup.GiteaToken = e.srv.URL, e.botToken
	cache := t.TempDir()
	e.opts.Lookup.Cache = datasource.NewCacheDir(cache)

	e.run(t)
	body := e.bodyWith(t, "apps/tools/Dockerfile")
	for _, want := range []string{"<details><summary>cli 1.1.0</summary>", "Reads the new config format", "[source / changelog](" + src.HTMLURL + ")"} {
		if !strings.Contains(body, want) {
			t.Errorf("the image's PR body lacks %q:\n%s", want, body)
		}
	}
	chartBody := e.bodyWith(t, "apps/edge/Chart.yaml")
	for _, want := range []string{"<details><summary>podinfo chart 1.1.0</summary>", "Smaller defaults", "[source / changelog](" + chartSrc.HTMLURL + ")"} {
		if !strings.Contains(chartBody, want) {
			t.Errorf("the OCI chart's PR body lacks %q:\n%s", want, chartBody)
		}
	}
	gets := reg.DigestGets.Load()
	if gets == 0 {
		t.Fatal("the first run GET no manifest by digest, so it cannot have read the label")
	}
	e.opts.Lookup.Cache = datasource.NewCacheDir(cache) // a new process on the same volume
	res := e.run(t)
	if n := res.Count("update"); n != 0 {
		t.Errorf("a second run updated %d PRs: %+v", n, res.Actions)
	}
	if n := reg.DigestGets.Load() - gets; n != 0 {
		t.Errorf("the second run GET %d manifests by digest, want 0 (the label is kept by digest)", n)
	}
}

// release creates a repository of the bot user on the homelab's Gitea
// (named after name) with one release on main.
func (e *env) release(t *testing.T, name string, opt sdk.CreateReleaseOption) (*sdk.Repository, *sdk.Release) {
	t.Helper()
	c, err := sdk.NewClient(e.srv.URL, sdk.SetToken(e.botToken), sdk.SetGiteaVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	src, _, err := c.CreateRepo(sdk.CreateRepoOption{Name: e.srv.UniqueName(name), AutoInit: true, DefaultBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	opt.Target = "main"
	rel, _, err := c.CreateRelease(e.owner, src.Name, opt)
	if err != nil {
		t.Fatal(err)
	}
	return src, rel
}

// bodyWith is the body of the one PR (in any state) whose body holds s.
func (e *env) bodyWith(t *testing.T, s string) string {
	t.Helper()
	var bodies []string
	for _, ps := range e.prs(t) {
		for _, p := range ps {
			if strings.Contains(p.Body, s) {
				bodies = append(bodies, p.Body)
			}
		}
	}
	if len(bodies) != 1 {
		t.Fatalf("%d PR bodies hold %q, want 1", len(bodies), s)
	}
	return bodies[0]
}
