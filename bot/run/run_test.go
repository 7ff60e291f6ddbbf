package run_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"hl.dev/hl/bot/forge"
	giteaforge "hl.dev/hl/bot/forge/gitea"
	"hl.dev/hl/bot/internal/fixture"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/bot/run"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/gitea/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }

func newRegistry(t testing.TB, repoName string, tags ...string) string {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tag := range tags {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(host+"/"+repoName+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	return host
}

// env is one scenario: a Gitea repo owned by the bot user, a chart repo
// and a registry.
type env struct {
	srv         *testserver.Server
	owner, name string
	botToken    string
	admin       *sdk.Client
	helm        *fixture.PodinfoRepo
	regHost     string
	opts        run.Options
}

func newEnv(t testing.TB) *env { return newEnvOn(t, testserver.ForTest(t)) }

// newEnvOn is newEnv on a Gitea of the test's own.
func newEnvOn(t testing.TB, srv *testserver.Server) *env {
	ctx := context.Background()
	u, err := srv.CreateUser(ctx, srv.UniqueName("bot"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, owner: u.Name, name: srv.UniqueName("homelab"), botToken: u.Token}
	botc, err := sdk.NewClient(srv.URL, sdk.SetToken(u.Token), sdk.SetGiteaVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := botc.CreateRepo(sdk.CreateRepoOption{Name: e.name, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	if e.admin, err = sdk.NewClient(srv.URL, sdk.SetToken(srv.AdminToken), sdk.SetGiteaVersion("")); err != nil {
		t.Fatal(err)
	}
	e.helm = fixture.NewPodinfoRepo(t, nil, "1.0.0", "1.0.1", "2.0.0")
	e.regHost = newRegistry(t, "app/web", "1.0.0", "1.1.0")

	files := map[string]string{
		"README.md": "# homelab\n",
		"apps/web/Chart.yaml": fmt.Sprintf(`apiVersion: v2
name: web
version: 0.1.0
dependencies:
  - name: podinfo
    version: 1.0.0 # pinned
    repository: %s
`, e.helm.URL),
		"apps/web/values.yaml": fmt.Sprintf(`podinfo:
  replicas: 3
  image:   %s/app/web:1.0.0   # keep spacing
`, e.regHost),
	}
	e.push(t, u.Name, u.Token, files, "initial")
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.WaitPushed(wctx, e.owner, e.name); err != nil {
		t.Fatal(err)
	}
	f, err := giteaforge.New(giteaforge.Options{URL: srv.URL, Token: u.Token, Owner: e.owner, Repo: e.name, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.opts = run.Options{
		Forge:  f,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Bot:    config.Bot{Automerge: []string{"patch"}},
		Lookup: lookup.Config{InsecureRegistries: []string{e.regHost}, Retries: 1, Backoff: 10 * time.Millisecond},
	}
	return e
}

// push commits files on top of main (cloning it when it exists) as user.
func (e *env) push(t testing.TB, user, token string, files map[string]string, msg string) {
	t.Helper()
	e.pushTo(t, user, token, "main", files, msg)
}

// pushTo commits files on top of branch (cloning it when it exists) as
// user.
func (e *env) pushTo(t testing.TB, user, token, branch string, files map[string]string, msg string) {
	t.Helper()
	dir := t.TempDir()
	auth := &githttp.BasicAuth{Username: user, Password: token}
	url := e.srv.URL + "/" + e.owner + "/" + e.name + ".git"
	r, err := git.PlainClone(dir, false, &git.CloneOptions{URL: url, Auth: auth, ReferenceName: plumbing.NewBranchReferenceName(branch), SingleBranch: true})
	if err != nil {
		if r, err = git.PlainInit(dir, false); err != nil {
			t.Fatal(err)
		}
		if _, err := r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
			t.Fatal(err)
		}
	}
	wt, _ := r.Worktree()
	for p, c := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		wt.Add(p)
	}
	sig := &object.Signature{Name: user, Email: user + "@example.com", When: time.Now()}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Push(&git.PushOptions{Auth: auth, RefSpecs: []gitconfig.RefSpec{gitconfig.RefSpec(h.String() + ":refs/heads/" + branch)}}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) file(t testing.TB, ref, p string) string {
	t.Helper()
	b, _, err := e.admin.GetFile(e.owner, e.name, ref, p)
	if err != nil {
		t.Fatalf("get %s@%s: %v", p, ref, err)
	}
	return string(b)
}

func (e *env) prs(t testing.TB) map[string][]*sdk.PullRequest {
	t.Helper()
	ps, _, err := e.admin.ListRepoPullRequests(e.owner, e.name, sdk.ListPullRequestsOptions{State: sdk.StateAll, ListOptions: sdk.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*sdk.PullRequest{}
	for _, p := range ps {
		// Head.Name (the JSON label) is the head branch; Head.Ref is
		// refs/pull/N/head whenever Gitea's branch table lacks the branch.
		out[p.Head.Name] = append(out[p.Head.Name], p)
	}
	return out
}

func (e *env) run(t testing.TB) *run.Result {
	t.Helper()
	start := time.Now()
	res, err := run.Run(context.Background(), e.opts)
	if err != nil {
		t.Fatalf("run: %v (%+v)", err, res)
	}
	t.Logf("run in %v: %+v", time.Since(start).Round(time.Millisecond), res.Actions)
	return res
}

// assertMinimalDiff checks that branch's file differs from base's only in
// the bytes old → new, at one place.
func assertMinimalDiff(t *testing.T, base, branch, old, new string) {
	t.Helper()
	i := 0
	for i < len(base) && i < len(branch) && base[i] == branch[i] {
		i++
	}
	j := 0
	for j < len(base)-i && j < len(branch)-i && base[len(base)-1-j] == branch[len(branch)-1-j] {
		j++
	}
	gotOld, gotNew := base[i:len(base)-j], branch[i:len(branch)-j]
	// Common prefixes of the versions shrink the window; widen to compare.
	if !strings.Contains(old, gotOld) || !strings.Contains(new, gotNew) || strings.Replace(base, old, new, 1) != branch {
		t.Errorf("diff is %q → %q, want only %q → %q\nbase:\n%s\nbranch:\n%s", gotOld, gotNew, old, new, base, branch)
	}
}

func hasLabel(p *sdk.PullRequest, l string) bool {
	for _, x := range p.Labels {
		if x.Name == l {
			return true
		}
	}
	return false
}

func TestScenario(t *testing.T) {
	e := newEnv(t)

	// 1. Outdated pins → one PR per package and major, minimal diffs.
	res := e.run(t)
	if n := res.Count("create"); n != 3 {
		t.Fatalf("created %d PRs, want 3: %+v warnings=%v", n, res.Actions, res.Warnings)
	}
	prs := e.prs(t)
	chartMain := e.file(t, "main", "apps/web/Chart.yaml")
	valuesMain := e.file(t, "main", "apps/web/values.yaml")
	for head, want := range map[string]struct{ file, old, new, typ, title string }{
		"hl-bot/podinfo-1.0.x": {"apps/web/Chart.yaml", "1.0.0", "1.0.1", "patch", "Update podinfo to 1.0.1"},
		"hl-bot/podinfo-2.x":   {"apps/web/Chart.yaml", "1.0.0", "2.0.0", "major", "Update podinfo to 2.0.0 (major)"},
		"hl-bot/app-web-1.x":   {"apps/web/values.yaml", "1.0.0", "1.1.0", "minor", ""},
	} {
		ps := prs[head]
		if len(ps) != 1 {
			t.Fatalf("%s: %d PRs", head, len(ps))
		}
		p := ps[0]
		if want.title != "" && p.Title != want.title {
			t.Errorf("%s: title %q, want %q", head, p.Title, want.title)
		}
		if !hasLabel(p, "upgrade") || !hasLabel(p, want.typ) {
			t.Errorf("%s: labels %v", head, p.Labels)
		}
		if !strings.Contains(p.Body, "<!-- hl-bot: ") || !strings.Contains(p.Body, "`"+want.old+"` → `"+want.new+"`") {
			t.Errorf("%s: body lacks marker or table:\n%s", head, p.Body)
		}
		base := chartMain
		if want.file == "apps/web/values.yaml" {
			base = valuesMain
		}
		assertMinimalDiff(t, base, e.file(t, head, want.file), want.old, want.new)
	}
	// PRs are opened in branch order, so their numbers follow the names.
	if a, b, c := prs["hl-bot/app-web-1.x"][0].Index, prs["hl-bot/podinfo-1.0.x"][0].Index, prs["hl-bot/podinfo-2.x"][0].Index; a >= b || b >= c {
		t.Errorf("PR numbers not in branch order: app-web #%d, podinfo-1.x #%d, podinfo-2.x #%d", a, b, c)
	}
	if b := prs["hl-bot/podinfo-2.x"][0].Body; !strings.Contains(b, "Rendered diff") || !strings.Contains(b, `+  version: "2.0.0"`) {
		t.Errorf("major PR body lacks the rendered diff:\n%s", b)
	}
	if is, _, err := e.admin.ListRepoIssues(e.owner, e.name, sdk.ListIssueOption{KeyWord: run.DashboardTitle, Type: sdk.IssueTypeIssue}); err != nil || len(is) != 1 {
		t.Errorf("dashboard issues: %d, %v", len(is), err)
	}

	// 2. Re-run: nothing changes.
	res = e.run(t)
	if res.Count("create")+res.Count("update")+res.Count("rebase") != 0 {
		t.Errorf("idempotent re-run acted: %+v", res.Actions)
	}

	// 3. A newer patch is published: the same PR is updated in place.
	old := prs["hl-bot/podinfo-1.0.x"][0]
	e.helm.Publish(t, "1.0.2")
	res = e.run(t)
	after := e.prs(t)["hl-bot/podinfo-1.0.x"]
	if len(after) != 1 || after[0].Index != old.Index || after[0].Title != "Update podinfo to 1.0.2" || after[0].Head.Sha == old.Head.Sha {
		t.Errorf("patch PR not updated in place: before #%d %s, after %+v", old.Index, old.Head.Sha, after[0])
	}
	assertMinimalDiff(t, chartMain, e.file(t, "hl-bot/podinfo-1.0.x", "apps/web/Chart.yaml"), "1.0.0", "1.0.2")

	// 4. A human closes the major PR: it stays closed.
	major := prs["hl-bot/podinfo-2.x"][0]
	closed := sdk.StateClosed
	if _, _, err := e.admin.EditPullRequest(e.owner, e.name, major.Index, sdk.EditPullRequestOption{State: &closed}); err != nil {
		t.Fatal(err)
	}
	res = e.run(t)
	if ps := e.prs(t)["hl-bot/podinfo-2.x"]; len(ps) != 1 || ps[0].State != sdk.StateClosed || res.Count("ignored") != 1 {
		t.Errorf("closed major PR reopened or duplicated: %d PRs, actions %+v", len(ps), res.Actions)
	}

	// 5. The base changes the same file: the patch branch is rebuilt on it.
	e.push(t, e.srv.AdminUser, e.srv.AdminToken, map[string]string{
		"apps/web/Chart.yaml": strings.Replace(chartMain, "version: 0.1.0", "version: 0.2.0", 1)}, "bump wrapper")
	res = e.run(t)
	var rebased bool
	for _, a := range res.Actions {
		rebased = rebased || (a.Branch == "hl-bot/podinfo-1.0.x" && a.Verb == "rebase")
	}
	if !rebased {
		t.Errorf("patch PR not rebased: %+v", res.Actions)
	}
	got := e.file(t, "hl-bot/podinfo-1.0.x", "apps/web/Chart.yaml")
	if !strings.Contains(got, "version: 0.2.0") || !strings.Contains(got, "version: 1.0.2 # pinned") {
		t.Errorf("rebased branch content:\n%s", got)
	}

	// 6. Automerge of the patch PR after a green status.
	p := e.prs(t)["hl-bot/podinfo-1.0.x"][0]
	status := func(s sdk.StatusState) {
		if _, _, err := e.admin.CreateStatus(e.owner, e.name, p.Head.Sha, sdk.CreateStatusOption{State: s, Context: "ci/woodpecker/pr/validate"}); err != nil {
			t.Fatal(err)
		}
	}
	// main is not protected here: Gitea would run a merge scheduled "when
	// checks succeed" at once, pending checks or not, so the bot does not
	// schedule one; it merges itself once it sees the checks succeed.
	status(sdk.StatusPending)
	res = e.run(t)
	waiting := false
	for _, a := range res.Actions {
		waiting = waiting || (a.Verb == "automerge-waiting" && strings.Contains(a.Detail, "requires no status check"))
	}
	if !waiting || res.Count("automerge-scheduled") != 0 {
		t.Errorf("scheduled a merge on an unprotected base: %+v", res.Actions)
	}
	time.Sleep(2 * time.Second)
	if q, _, err := e.admin.GetPullRequest(e.owner, e.name, p.Index); err != nil || q.HasMerged {
		t.Fatalf("merged while its checks are pending: %v", err)
	}
	status(sdk.StatusSuccess)
	res = e.run(t)
	if q, _, err := e.admin.GetPullRequest(e.owner, e.name, p.Index); err != nil || !q.HasMerged || res.Count("merge") != 1 {
		t.Errorf("patch PR not merged after a green status: %v %+v", err, res.Actions)
	}
}

// failAfter fails every request after the first n.
type failAfter struct {
	n, calls atomic.Int64
}

func (f *failAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.calls.Add(1) > f.n.Load() {
		return nil, fmt.Errorf("injected failure")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestKilledMidRunLeavesNoDuplicates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []int64{3, 7, 11} {
		ft := &failAfter{}
		ft.n.Store(n)
		f, err := giteaforge.New(giteaforge.Options{URL: e.srv.URL, Token: e.botToken, Owner: e.owner, Repo: e.name, Transport: ft, Attempts: 2, Backoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		o := e.opts
		o.Forge = f
		if _, err := run.Run(ctx, o); err == nil {
			t.Logf("failure after %d calls: run finished anyway", n)
		} else if strings.Contains(err.Error(), e.botToken) {
			t.Errorf("token in error: %v", err)
		}
	}
	e.run(t)
	res := e.run(t)
	for head, ps := range e.prs(t) {
		if len(ps) != 1 {
			t.Errorf("%s: %d PRs", head, len(ps))
		}
	}
	if len(e.prs(t)) != 3 || res.Count("create") != 0 {
		t.Errorf("after recovery: %d branches with PRs, actions %+v", len(e.prs(t)), res.Actions)
	}
	is, _, _ := e.admin.ListRepoIssues(e.owner, e.name, sdk.ListIssueOption{KeyWord: run.DashboardTitle, Type: sdk.IssueTypeIssue})
	if len(is) != 1 {
		t.Errorf("%d dashboard issues", len(is))
	}
}

// A bot PR whose head branch Gitea no longer lists. Gitea then answers
// the PR with head ref refs/pull/N/head (its label still names the
// branch): the same answer the chaos run of seed 1 met for an open PR
// whose branch record an interrupted push left unsynced, after which the
// bot opened a second PR for the branch (or was refused with "pull request
// already exists"). Here the branch is deleted, which also closes the PR:
// the bot knows the PR by its branch, takes the close as a decline and
// opens no second PR.
func TestPRWithoutItsBranch(t *testing.T) {
	e := newEnv(t)
	e.run(t)
	before := e.prs(t)
	if len(before) != 3 {
		t.Fatalf("%d branches with PRs, want 3", len(before))
	}
	var head string
	for h := range before {
		if head == "" || h < head {
			head = h
		}
	}
	if _, _, err := e.admin.DeleteRepoBranch(e.owner, e.name, head); err != nil {
		t.Fatal(err)
	}
	if p := before[head][0]; true {
		got, _, err := e.admin.GetPullRequest(e.owner, e.name, p.Index)
		if err != nil {
			t.Fatal(err)
		}
		if got.Head.Name != head || got.Head.Ref == head {
			t.Fatalf("Gitea answers the PR of the deleted %s with label %q, ref %q: the case is not set up", head, got.Head.Name, got.Head.Ref)
		}
	}
	res := e.run(t)
	if res.Count("create") != 0 {
		t.Errorf("a run created again: %+v", res.Actions)
	}
	after := e.prs(t)
	for h, ps := range after {
		if len(ps) != 1 {
			t.Errorf("%s: %d PRs, want 1", h, len(ps))
		}
	}
	if len(after) != 3 {
		t.Errorf("%d branches with PRs, want 3", len(after))
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	o := e.opts
	o.DryRun = true
	res, err := run.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Count("create") != 3 || len(e.prs(t)) != 0 {
		t.Errorf("dry run: %+v, %d PRs", res.Actions, len(e.prs(t)))
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t)
	e.opts.Bot.Limits = config.Limits{MaxPRsPerRun: 1, MaxOpenPRs: 2}
	res := e.run(t)
	if res.Count("create") != 1 || res.Count("rate-limited") != 2 {
		t.Errorf("run 1: %+v", res.Actions)
	}
	res = e.run(t)
	if res.Count("create") != 1 || res.Count("rate-limited") != 1 {
		t.Errorf("run 2: %+v", res.Actions)
	}
	is, err := e.opts.Forge.FindIssue(context.Background(), run.DashboardTitle)
	if err != nil || !strings.Contains(is.Body, "max 2 open PRs") {
		t.Errorf("dashboard: %v\n%v", err, is)
	}
}

// BenchmarkRunOnce: a first run on a fresh repo (three PRs to open: one
// push, three PR creations, labels, the dashboard) and a re-run that has
// nothing to do.
func BenchmarkRunOnce(b *testing.B) {
	ctx := context.Background()
	b.Run("open-3-PRs", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			e := newEnv(b)
			e.opts.Logger = nil
			b.StartTimer()
			res, err := run.Run(ctx, e.opts)
			if err != nil || res.Count("create") != 3 {
				b.Fatalf("run: %v %+v", err, res)
			}
		}
	})
	b.Run("no-op", func(b *testing.B) {
		e := newEnv(b)
		e.opts.Logger = nil
		if _, err := run.Run(ctx, e.opts); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := run.Run(ctx, e.opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var _ = forge.StateOpen
