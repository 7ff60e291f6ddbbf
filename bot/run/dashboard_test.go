package run_test

import (
	"strings"
	"testing"

	sdk "code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot/run"
	"hl.dev/hl/internal/config"
)

// The dashboard's boxes act, against the real Gitea. With one open PR
// allowed, the first run opens one and rate-limits two; ticking one
// rate-limited box opens that PR on the next run despite the limit while
// the other stays limited. A branch a human pushed to is left alone until
// its "take back" box is ticked: then the next run rebuilds it (the
// human's commit gone, the same PR). An open branch the base moved under
// without a conflict is left as it is until its rebase box is ticked:
// then it is rebuilt on the new base. Every run clears the boxes it read,
// and the run-now box is read too.
func TestDashboardActs(t *testing.T) {
	e := newEnv(t)
	e.opts.Bot = config.Bot{Limits: config.Limits{MaxOpenPRs: 1}}
	res := e.run(t)
	created, limited := branchesOf(res, "create"), branchesOf(res, "rate-limited")
	if len(created) != 1 || len(limited) != 2 {
		t.Fatalf("created %v, rate-limited %v: want 1 and 2", created, limited)
	}
	body := e.issueBody(t, res.Dashboard)
	for _, box := range []string{"- [ ] <!-- hl-run-now -->", "- [ ] <!-- hl-retry: " + limited[0] + " -->",
		"- [ ] <!-- hl-retry: " + limited[1] + " -->", "- [ ] <!-- hl-rebase: " + created[0] + " -->"} {
		if !strings.Contains(body, box) {
			t.Errorf("the dashboard lacks the box %q:\n%s", box, body)
		}
	}
	if r := run.ReadRequests(body); r.RunNow || len(r.Retry)+len(r.Rebase)+len(r.Approved) != 0 {
		t.Errorf("an untouched dashboard asks for something: %+v", r)
	}

	// 1. Retry a rate-limited PR (and tick run now, as a human would).
	ticked := tick(t, body, "<!-- hl-retry: "+limited[0]+" -->")
	ticked = tick(t, ticked, "<!-- hl-run-now -->")
	if r := run.ReadRequests(ticked); !r.RunNow || !r.Retry[limited[0]] || len(r.Retry) != 1 {
		t.Fatalf("the ticked boxes read as %+v", r)
	}
	e.editIssue(t, res.Dashboard, ticked)
	res = e.run(t)
	prs := e.prs(t)
	if len(prs[limited[0]]) != 1 || len(prs[limited[1]]) != 0 || res.Count("rate-limited") != 1 {
		t.Fatalf("after the retry box: %d PRs for %s, %d for %s, %d rate-limited: want 1, 0, 1",
			len(prs[limited[0]]), limited[0], len(prs[limited[1]]), limited[1], res.Count("rate-limited"))
	}
	body = e.issueBody(t, res.Dashboard)
	if strings.Contains(body, "- [x]") {
		t.Errorf("the run left a box ticked:\n%s", body)
	}

	// rebuild ticks branch's rebuild box and runs: the branch is rebuilt.
	rebuild := func(branch string) {
		t.Helper()
		e.editIssue(t, res.Dashboard, tick(t, e.issueBody(t, res.Dashboard), "<!-- hl-rebase: "+branch+" -->"))
		if res = e.run(t); verbOf(res, branch) != "rebase" {
			t.Fatalf("%s after its box was ticked: %q, want rebase", branch, verbOf(res, branch))
		}
	}

	// 2. A branch a human pushed to is theirs until the box takes it back.
	branch := created[0]
	e.pushTo(t, e.srv.AdminUser, e.srv.AdminToken, branch, map[string]string{"apps/web/NOTES.md": "a human's note\n"}, "a human's fix")
	before := e.prs(t)[branch][0]
	res = e.run(t)
	if verbOf(res, branch) != "human-edited" {
		t.Fatalf("%s after a human's push: %q, want human-edited", branch, verbOf(res, branch))
	}
	rebuild(branch)
	if _, _, err := e.admin.GetFile(e.owner, e.name, branch, "apps/web/NOTES.md"); err == nil {
		t.Error("the human's commit is still on the branch taken back")
	}
	if after := e.prs(t)[branch]; len(after) != 1 || after[0].Index != before.Index {
		t.Errorf("the branch taken back: %d PRs, want the same #%d", len(after), before.Index)
	}
	if br, _, err := e.admin.GetRepoBranch(e.owner, e.name, branch); err != nil || br.Commit == nil || br.Commit.Author == nil ||
		br.Commit.Author.Email == e.srv.AdminUser+"@example.com" {
		t.Errorf("the branch taken back still ends in the human's commit (%v)", err)
	}
	if res = e.run(t); verbOf(res, branch) != "unchanged" {
		t.Errorf("the run after the take-back: %s is %q, want unchanged", branch, verbOf(res, branch))
	}

	// 3. The base moves without a conflict: nothing happens until the box.
	open := limited[0]
	e.push(t, e.srv.AdminUser, e.srv.AdminToken, map[string]string{"README.md": "# homelab, moved on\n"}, "main moves on")
	res = e.run(t)
	if verbOf(res, open) != "unchanged" {
		t.Fatalf("%s after main moved: %q, want unchanged (no conflict)", open, verbOf(res, open))
	}
	rebuild(open)
	if got := e.file(t, open, "README.md"); got != "# homelab, moved on\n" {
		t.Errorf("%s was not rebuilt on the new base: README.md is %q", open, got)
	}
	if body = e.issueBody(t, res.Dashboard); strings.Contains(body, "- [x]") {
		t.Errorf("the run left a box ticked:\n%s", body)
	}
}

// tick ticks the box that carries marker.
func tick(t *testing.T, body, marker string) string {
	t.Helper()
	out := strings.Replace(body, "- [ ] "+marker, "- [x] "+marker, 1)
	if out == body {
		t.Fatalf("no box %s on the dashboard:\n%s", marker, body)
	}
	return out
}

func branchesOf(res *run.Result, verb string) []string {
	var out []string
	for _, a := range res.Actions {
		if a.Verb == verb {
			out = append(out, a.Branch)
		}
	}
	return out
}

// verbOf is the last action the run took on branch.
func verbOf(res *run.Result, branch string) string {
	v := ""
	for _, a := range res.Actions {
		if a.Branch == branch {
			v = a.Verb
		}
	}
	return v
}

func (e *env) issueBody(t *testing.T, n int) string {
	t.Helper()
	is, _, err := e.admin.GetIssue(e.owner, e.name, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	return is.Body
}

func (e *env) editIssue(t *testing.T, n int, body string) {
	t.Helper()
	if _, _, err := e.admin.EditIssue(e.owner, e.name, int64(n), sdk.EditIssueOption{Body: &body}); err != nil {
		t.Fatal(err)
	}
}
