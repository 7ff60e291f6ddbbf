package github

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"hl.dev/hl/bot/forge"
)

const (
	findHead  = "GET " + rp + "/pulls?head=" + owner + ":" + headRef + "&state=all"
	getPR12   = "GET " + rp + "/pulls/12"
	statusKey = "GET " + rp + "/commits/" + headSHA + "/status?per_page=100"
	checksKey = "GET " + rp + "/commits/" + headSHA + "/check-runs?per_page=100"
	issuesKey = "GET " + rp + "/issues?creator=hl-bot&per_page=100&state=open"
)

func wantKeys(t *testing.T, reqs []request, want ...string) {
	t.Helper()
	if got := keys(reqs); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n got %q\nwant %q", got, want)
	}
}

func noToken(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), token) {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestCreatePRThenLabels(t *testing.T) {
	g := newFake(t)
	f := g.forge(t)
	g.on(findHead, ok("pulls/empty.json"))
	g.on("POST "+rp+"/pulls", reply{201, "pulls/created-12.json"})
	g.on("GET "+rp+"/labels?per_page=100", ok("labels/list.json"))
	g.on("POST "+rp+"/labels", reply{201, "labels/created-hl.json"}, reply{201, "labels/created-minor.json"})
	g.on("POST "+rp+"/issues/12/labels", ok("labels/issue-12.json"))

	pr, err := f.CreatePR(context.Background(), forge.NewPR{Title: "Update k3s to v1.30.4+k3s1", Body: "body", Head: headRef, Base: "main", Labels: []string{"hl", "minor"}})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Number != 12 || pr.State != forge.StateOpen || pr.Head != headRef || pr.Base != "main" || pr.HeadSHA != headSHA ||
		!pr.Mergeable || !reflect.DeepEqual(pr.Labels, []string{"hl", "minor"}) || pr.URL != "https://github.com/octo-org/homelab/pull/12" {
		t.Errorf("pr = %+v", pr)
	}
	reqs := g.requests()
	checkAuth(t, reqs)
	wantKeys(t, reqs, "GET "+rp+"/pulls", "POST "+rp+"/pulls", "GET "+rp+"/labels", "POST "+rp+"/labels", "POST "+rp+"/labels", "POST "+rp+"/issues/12/labels")
	create := reqs[1]
	for k, v := range map[string]string{"title": "Update k3s to v1.30.4+k3s1", "body": "body", "head": headRef, "base": "main"} {
		if got := field(t, create, k); got != v {
			t.Errorf("create PR %s = %v, want %q", k, got, v)
		}
	}
	if field(t, create, "labels") != nil {
		t.Error("create PR sent labels; GitHub's endpoint takes none")
	}
	if field(t, reqs[3], "name") != "hl" || field(t, reqs[4], "name") != "minor" || field(t, reqs[4], "color") != "fbca04" {
		t.Errorf("label creation bodies: %v, %v", reqs[3].Body, reqs[4].Body)
	}
	if !reflect.DeepEqual(reqs[5].Body, []any{"hl", "minor"}) {
		t.Errorf("add labels body = %v", reqs[5].Body)
	}

	// Labels are cached: a second AddLabels only posts to the issue.
	g.on("POST "+rp+"/issues/12/labels", ok("labels/issue-12.json"))
	if err := f.AddLabels(context.Background(), 12, []string{"minor"}); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, g.requests(), "POST "+rp+"/issues/12/labels")
}

func TestCreatePRRaceReturnsExisting(t *testing.T) {
	g := newFake(t)
	f := g.forge(t)
	// Not there when looked up, created by someone else before the POST.
	g.on(findHead, ok("pulls/empty.json"), ok("pulls/list-head-open-12.json"))
	g.on("POST "+rp+"/pulls", reply{422, "pulls/exists-422.json"})
	pr, err := f.CreatePR(context.Background(), forge.NewPR{Title: "t", Head: headRef, Base: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Number != 12 || pr.State != forge.StateOpen {
		t.Errorf("pr = %+v", pr)
	}
	wantKeys(t, g.requests(), "GET "+rp+"/pulls", "POST "+rp+"/pulls", "GET "+rp+"/pulls")

	// An open PR found up front is returned without a POST.
	g.on(findHead, ok("pulls/list-head-open-12.json"))
	if _, err := f.CreatePR(context.Background(), forge.NewPR{Title: "t", Head: headRef, Base: "main"}); err != nil {
		t.Fatal(err)
	}
	if reqs := g.requests(); len(reqs) != 1 || reqs[0].Method != "GET" {
		t.Errorf("requests = %q", keys(reqs))
	}
}

func TestFindPRByHead(t *testing.T) {
	g := newFake(t)
	f := g.forge(t)
	ctx := context.Background()
	g.on(findHead, ok("pulls/list-head-mixed.json"))

	// #15 targets another base; #12 is the newest into main: closed by a
	// human (closed, merged_at null).
	pr, err := f.FindPR(ctx, headRef, "main")
	if err != nil {
		t.Fatal(err)
	}
	if pr.Number != 12 || pr.State != forge.StateClosed {
		t.Errorf("pr = #%d %s, want #12 closed", pr.Number, pr.State)
	}
	if pr, err := f.FindPR(ctx, headRef, "release-1.x"); err != nil || pr.Number != 15 || pr.State != forge.StateOpen {
		t.Errorf("release-1.x: %+v, %v", pr, err)
	}
	reqs := g.requests()
	if len(reqs) != 2 || reqs[0].Query != "head=octo-org%3Ahl%2Fk3s-v1.30.4&state=all" {
		t.Fatalf("requests = %+v", reqs)
	}
	// The repeated lookup was conditional and answered 304 from the cache.
	if reqs[1].IfNoneMatch == "" || reqs[1].Status != 304 {
		t.Errorf("second lookup: If-None-Match %q, status %d; want a conditional request answered 304", reqs[1].IfNoneMatch, reqs[1].Status)
	}

	g.on(findHead, ok("pulls/list-head-merged-5.json"))
	if pr, err := f.FindPR(ctx, headRef, "main"); err != nil || pr.State != forge.StateMerged || pr.Number != 5 {
		t.Errorf("merged: %+v, %v", pr, err)
	}
	g.on(findHead, ok("pulls/empty.json"))
	if _, err := f.FindPR(ctx, headRef, "main"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("empty: err = %v, want ErrNotFound", err)
	}
	checkAuth(t, g.requests())
}

func TestListPRs(t *testing.T) {
	g := newFake(t)
	f := g.forge(t)
	g.on("GET "+rp+"/pulls?direction=asc&per_page=100&sort=created&state=closed", ok("pulls/list-head-mixed.json"))
	prs, err := f.ListPRs(context.Background(), forge.ListOptions{State: forge.StateClosed, HeadPrefix: "hl/"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range prs {
		got = append(got, p.State)
	}
	if !reflect.DeepEqual(got, []string{"open", "closed", "merged"}) {
		t.Errorf("states = %v", got)
	}
}

func TestUpdatePR(t *testing.T) {
	g := newFake(t)
	f := g.forge(t)
	g.on("PATCH "+rp+"/pulls/12", ok("pulls/edited-12.json"))
	if err := f.UpdatePR(context.Background(), 12, "Update k3s to v1.30.5+k3s1", "new body"); err != nil {
		t.Fatal(err)
	}
	reqs := g.requests()
	checkAuth(t, reqs)
	wantKeys(t, reqs, "PATCH "+rp+"/pulls/12")
	if field(t, reqs[0], "title") != "Update k3s to v1.30.5+k3s1" || field(t, reqs[0], "body") != "new body" || field(t, reqs[0], "state") != nil {
		t.Errorf("body = %v", reqs[0].Body)
	}
}

func TestClosePRWithComment(t *testing.T) {
	g := newFake(t)
	f := g.forge(t)
	g.on("POST "+rp+"/issues/12/comments", reply{201, "issues/comment-12.json"})
	g.on("PATCH "+rp+"/pulls/12", ok("pulls/closed-12.json"))
	if err := f.ClosePR(context.Background(), 12, "Superseded by a newer update."); err != nil {
		t.Fatal(err)
	}
	reqs := g.requests()
	checkAuth(t, reqs)
	wantKeys(t, reqs, "POST "+rp+"/issues/12/comments", "PATCH "+rp+"/pulls/12")
	if field(t, reqs[0], "body") != "Superseded by a newer update." || field(t, reqs[1], "state") != "closed" || field(t, reqs[1], "title") != nil {
		t.Errorf("bodies = %v, %v", reqs[0].Body, reqs[1].Body)
	}
}

func TestCommitStatus(t *testing.T) {
	for _, tc := range []struct{ status, checks, want string }{
		{"statuses/combined-none.json", "checks/runs-none.json", forge.StatusNone},
		{"statuses/combined-success.json", "checks/runs-none.json", forge.StatusSuccess},
		{"statuses/combined-none.json", "checks/runs-success.json", forge.StatusSuccess},
		{"statuses/combined-success.json", "checks/runs-success.json", forge.StatusSuccess},
		{"statuses/combined-pending.json", "checks/runs-success.json", forge.StatusPending},
		{"statuses/combined-success.json", "checks/runs-in-progress.json", forge.StatusPending},
		{"statuses/combined-failure.json", "checks/runs-in-progress.json", forge.StatusFailure},
		{"statuses/combined-success.json", "checks/runs-failure.json", forge.StatusFailure},
	} {
		g := newFake(t)
		g.on(statusKey, ok(tc.status))
		g.on(checksKey, ok(tc.checks))
		got, err := g.forge(t).CommitStatus(context.Background(), headSHA)
		if err != nil || got != tc.want {
			t.Errorf("%s + %s = %q, %v; want %q", tc.status, tc.checks, got, err, tc.want)
		}
	}
}

func TestMerge(t *testing.T) {
	ctx := context.Background()
	t.Run("green", func(t *testing.T) {
		g := newFake(t)
		f := g.forge(t)
		g.on(getPR12, ok("pulls/get-12-clean.json"))
		g.on(statusKey, ok("statuses/combined-success.json"))
		g.on(checksKey, ok("checks/runs-success.json"))
		g.on("PUT "+rp+"/pulls/12/merge", ok("pulls/merged-12.json"))
		g.on("DELETE "+rp+"/git/refs/heads/"+headRef, reply{204, ""})
		if err := f.Merge(ctx, 12, forge.MergeOptions{WhenChecksSucceed: true, Style: "squash", DeleteBranch: true, Message: "msg"}); err != nil {
			t.Fatal(err)
		}
		reqs := g.requests()
		checkAuth(t, reqs)
		wantKeys(t, reqs, "GET "+rp+"/pulls/12", "GET "+rp+"/commits/"+headSHA+"/status", "GET "+rp+"/commits/"+headSHA+"/check-runs",
			"PUT "+rp+"/pulls/12/merge", "DELETE "+rp+"/git/refs/heads/"+headRef)
		m := reqs[3]
		if field(t, m, "merge_method") != "squash" || field(t, m, "sha") != headSHA || field(t, m, "commit_message") != "msg" {
			t.Errorf("merge body = %v", m.Body)
		}
	})
	for _, tc := range []struct {
		name, pr, status, checks string
		want                     error
	}{
		{"pending", "pulls/get-12-clean.json", "statuses/combined-pending.json", "checks/runs-success.json", ErrNotReady},
		{"check running", "pulls/get-12-clean.json", "statuses/combined-success.json", "checks/runs-in-progress.json", ErrNotReady},
		{"no status yet", "pulls/get-12-clean.json", "statuses/combined-none.json", "checks/runs-none.json", ErrNotReady},
		{"failure", "pulls/get-12-clean.json", "statuses/combined-failure.json", "checks/runs-success.json", ErrChecksFailed},
		{"conflict", "pulls/get-12-dirty.json", "", "", ErrNotReady},
		{"mergeability unknown", "pulls/get-12-unknown.json", "", "", ErrNotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFake(t)
			f := g.forge(t)
			g.on(getPR12, ok(tc.pr))
			if tc.status != "" {
				g.on(statusKey, ok(tc.status))
				g.on(checksKey, ok(tc.checks))
			}
			err := f.Merge(ctx, 12, forge.MergeOptions{WhenChecksSucceed: true})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			noToken(t, err)
			for _, r := range g.requests() {
				if r.Method != "GET" {
					t.Errorf("refused merge still sent %s %s", r.Method, r.Path)
				}
			}
		})
	}
	t.Run("closed by human", func(t *testing.T) {
		g := newFake(t)
		g.on(getPR12, ok("pulls/closed-12.json"))
		if err := g.forge(t).Merge(ctx, 12, forge.MergeOptions{}); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("the style the repository allows", func(t *testing.T) {
		g := newFake(t)
		g.on(getPR12, ok("pulls/get-12-clean.json"))
		g.on("GET "+rp, ok("repos/repo-squash-only.json"))
		g.on("PUT "+rp+"/pulls/12/merge", ok("pulls/merged-12.json"))
		if err := g.forge(t).Merge(ctx, 12, forge.MergeOptions{}); err != nil {
			t.Fatal(err)
		}
		reqs := g.requests()
		wantKeys(t, reqs, "GET "+rp+"/pulls/12", "GET "+rp, "PUT "+rp+"/pulls/12/merge")
		if m := reqs[2]; field(t, m, "merge_method") != "squash" {
			t.Errorf("merge_method %v on a squash-only repository", m.Body)
		}
	})
	t.Run("no style allowed", func(t *testing.T) {
		g := newFake(t)
		g.on(getPR12, ok("pulls/get-12-clean.json"))
		g.on("GET "+rp, ok("repos/repo-no-merge.json"))
		err := g.forge(t).Merge(ctx, 12, forge.MergeOptions{})
		if err == nil || !strings.Contains(err.Error(), "allows no merge method") {
			t.Errorf("err = %v", err)
		}
		for _, r := range g.requests() {
			if r.Method != "GET" {
				t.Errorf("a merge no style allows still sent %s %s", r.Method, r.Path)
			}
		}
	})
	t.Run("refused by GitHub", func(t *testing.T) {
		g := newFake(t)
		g.on(getPR12, ok("pulls/get-12-clean.json"))
		g.on("GET "+rp, ok("repos/repo.json"))
		g.on("PUT "+rp+"/pulls/12/merge", reply{405, "pulls/not-mergeable-405.json"})
		err := g.forge(t).Merge(ctx, 12, forge.MergeOptions{})
		if err == nil || !strings.Contains(err.Error(), "405") || !strings.Contains(err.Error(), "not mergeable") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestDashboardIssueCreateThenUpdate(t *testing.T) {
	g := newFake(t)
	f := g.forge(t)
	ctx := context.Background()
	const title = "Dependency Dashboard"
	g.on("GET /user", ok("users/me.json"))
	g.on(issuesKey, ok("issues/list-empty.json"))
	g.on("POST "+rp+"/issues", reply{201, "issues/created-3.json"})

	// First run: none yet, create it.
	if _, err := f.FindIssue(ctx, title); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("FindIssue = %v, want ErrNotFound", err)
	}
	is, err := f.CreateIssue(ctx, title, "## Open\n\n- [ ] k3s v1.30.4+k3s1\n")
	if err != nil {
		t.Fatal(err)
	}
	if is.Number != 3 || is.State != "open" || is.URL != "https://github.com/octo-org/homelab/issues/3" {
		t.Errorf("issue = %+v", is)
	}
	reqs := g.requests()
	checkAuth(t, reqs)
	wantKeys(t, reqs, "GET /user", "GET "+rp+"/issues", "POST "+rp+"/issues")
	if field(t, reqs[2], "title") != title || !strings.Contains(field(t, reqs[2], "body").(string), "k3s") {
		t.Errorf("create body = %v", reqs[2].Body)
	}

	// Next run: found (the PR sharing the title is skipped), edited in place.
	g.on(issuesKey, ok("issues/list-dashboard.json"))
	g.on("PATCH "+rp+"/issues/3", ok("issues/edited-3.json"))
	is, err = f.FindIssue(ctx, title)
	if err != nil {
		t.Fatal(err)
	}
	if is.Number != 3 {
		t.Fatalf("found #%d, want #3", is.Number)
	}
	if err := f.UpdateIssue(ctx, is.Number, title, "## Open\n\n- [x] k3s v1.30.4+k3s1 (#12)\n"); err != nil {
		t.Fatal(err)
	}
	reqs = g.requests()
	wantKeys(t, reqs, "GET "+rp+"/issues", "PATCH "+rp+"/issues/3") // login cached
	if field(t, reqs[1], "body") != "## Open\n\n- [x] k3s v1.30.4+k3s1 (#12)\n" || field(t, reqs[1], "title") != title {
		t.Errorf("edit body = %v", reqs[1].Body)
	}
}

func TestServerErrorRetriedThenClearError(t *testing.T) {
	g := newFake(t)
	f := g.forge(t) // 3 attempts
	g.on("GET "+rp, reply{502, "errors/server-error.json"}, reply{503, "errors/server-error.json"}, ok("repos/repo.json"))
	b, err := f.DefaultBranch(context.Background())
	if err != nil || b != "main" {
		t.Fatalf("DefaultBranch = %q, %v", b, err)
	}
	if n := len(g.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	g.on("GET "+rp, reply{502, "errors/server-error.json"})
	_, err = f.DefaultBranch(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"octo-org/homelab", "502", "3 attempts", "Server Error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	noToken(t, err)
	if n := len(g.requests()); n != 3 {
		t.Errorf("%d requests, want 3 (bounded)", n)
	}
}

func TestNotFoundNamesRepo(t *testing.T) {
	g := newFake(t)
	f := g.forge(t)
	g.on("GET "+rp, reply{404, "errors/not-found.json"})
	_, err := f.DefaultBranch(context.Background())
	if !errors.Is(err, forge.ErrNotFound) || !strings.Contains(err.Error(), "octo-org/homelab") {
		t.Errorf("err = %v", err)
	}
	noToken(t, err)
	if n := len(g.requests()); n != 1 {
		t.Errorf("404 retried: %d requests", n)
	}

	g.on("GET "+rp+"/branches/"+headRef, ok("branches/hl-k3s.json"))
	if a, err := f.BranchLastCommitAuthor(context.Background(), headRef); err != nil || a != "hl-bot@users.noreply.github.com" {
		t.Errorf("author = %q, %v", a, err)
	}
	g.on("GET "+rp+"/branches/gone", reply{404, "errors/branch-not-found.json"})
	if _, err := f.BranchLastCommitAuthor(context.Background(), "gone"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("missing branch: %v", err)
	}
	checkAuth(t, g.requests())
}

func TestGitAuthAndIdentity(t *testing.T) {
	f, err := New(Options{Token: token, Owner: owner, Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "github" || f.CloneURL() != "https://github.com/octo-org/homelab.git" {
		t.Errorf("name %q, clone URL %q", f.Name(), f.CloneURL())
	}
	a, ok := f.Auth().(*githttp.BasicAuth)
	if !ok || a.Username != "x-access-token" || a.Password != token {
		t.Errorf("auth = %#v", f.Auth())
	}
	if strings.Contains(a.String(), token) {
		t.Error("auth String() shows the token")
	}
	if f.c.BaseURL.String() != DefaultAPIURL {
		t.Errorf("base URL %s", f.c.BaseURL)
	}
	if _, err := New(Options{Owner: owner}); err == nil {
		t.Error("missing repo accepted")
	}
	app, err := New(Options{Owner: owner, Repo: "r", Token: "t", Login: "app[bot]"})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := app.BotLogin(context.Background()); err != nil || l != "app[bot]" {
		t.Errorf("preset login: %q, %v", l, err)
	}
}
