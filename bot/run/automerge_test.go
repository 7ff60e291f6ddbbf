package run_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	giteaforge "hl.dev/hl/bot/forge/gitea"
	"hl.dev/hl/bot/run"
	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/config"
)

// TestAutomergeYouCanTrust runs the bot against a real Gitea with patches
// automerged after a 3-day minimum release age:
//
//   - the image update has no release time (its registry config carries
//     none), so it is held, and the dashboard says why; ticking its box
//     on the dashboard approves it for the next run;
//   - a minor release lands on its own branch, the patch branch keeps the
//     patch;
//   - a merge scheduled on the patch PR is cancelled before the bot pushes
//     a newer patch to the branch (Gitea would merge the new head at once:
//     with no status yet it counts as passing), and a success status on
//     the new head merges nothing until the bot has judged it again;
//   - the merge uses the style the repository allows (squash only here);
//   - Renovate's "Dependency Dashboard" (another author's) is left alone.
func TestAutomergeYouCanTrust(t *testing.T) {
	e := newEnv(t)
	day := 24 * time.Hour
	// The charts were indexed just now: ten days on, they are old enough.
	later := func() time.Time { return time.Now().Add(10 * day) }
	e.opts.Bot = config.Bot{Automerge: []string{"patch"}, MinimumReleaseAge: "3d"}
	e.opts.Lookup.MinimumReleaseAge = 3 * day
	e.opts.Lookup.Now = later
	no, yes := false, true
	squash := sdk.MergeStyleSquash
	if _, _, err := e.admin.EditRepo(e.owner, e.name, sdk.EditRepoOption{AllowMerge: &no, AllowRebase: &no, AllowRebaseMerge: &no, AllowSquash: &yes, DefaultMergeStyle: &squash}); err != nil {
		t.Fatal(err)
	}
	// As hl bootstrap protects main: the validate check is required.
	// Without it Gitea runs a scheduled merge at once, pending checks or not.
	if _, _, err := e.admin.CreateBranchProtection(e.owner, e.name, sdk.CreateBranchProtectionOption{
		BranchName: "main", EnableStatusCheck: true, StatusCheckContexts: []string{"ci/woodpecker/pr/validate"},
	}); err != nil {
		t.Fatal(err)
	}

	// Renovate's dashboard, left by the bot the repository used before.
	const theirs = "This issue lists Renovate updates and detected dependencies."
	other, _, err := e.admin.CreateIssue(e.owner, e.name, sdk.CreateIssueOption{Title: run.DashboardTitle, Body: theirs})
	if err != nil {
		t.Fatal(err)
	}

	// 1. The untimestamped image update is held.
	res := e.run(t)
	if res.Dashboard == 0 || res.Dashboard == int(other.Index) {
		t.Fatalf("dashboard #%d: the bot took over another author's issue #%d", res.Dashboard, other.Index)
	}
	if o, _, err := e.admin.GetIssue(e.owner, e.name, other.Index); err != nil || o.Body != theirs {
		t.Errorf("another bot's dashboard was edited: %v", err)
	}
	prs := e.prs(t)
	if len(prs["hl-bot/podinfo-1.0.x"]) != 1 || len(prs["hl-bot/podinfo-2.x"]) != 1 || len(prs["hl-bot/app-web-1.x"]) != 0 {
		t.Fatalf("PR branches: %v", keys(prs))
	}
	if len(res.Held) != 1 || !strings.Contains(res.Held[0], "update to 1.1.0 held: its release time is unknown") {
		t.Errorf("held = %v", res.Held)
	}
	is, _, err := e.admin.GetIssue(e.owner, e.name, int64(res.Dashboard))
	if err != nil || is.Title != run.DashboardTitle {
		t.Fatalf("dashboard #%d: %v", res.Dashboard, err)
	}
	if b := is.Body; !strings.Contains(b, "## Held by the minimum release age") || !strings.Contains(b, "1.1.0 held: its release time is unknown") {
		t.Errorf("dashboard does not say what is held and why:\n%s", b)
	}

	// A human ticks the held update's box: the next run proposes it.
	ticked := strings.Replace(is.Body, "- [ ] <!-- hl-approve: ", "- [x] <!-- hl-approve: ", 1)
	if ticked == is.Body {
		t.Fatalf("no approval box on the dashboard:\n%s", is.Body)
	}
	if _, _, err := e.admin.EditIssue(e.owner, e.name, is.Index, sdk.EditIssueOption{Body: &ticked}); err != nil {
		t.Fatal(err)
	}
	res = e.run(t)
	if ps := e.prs(t)["hl-bot/app-web-1.x"]; len(ps) != 1 || len(res.Held) != 0 {
		t.Fatalf("approved update not proposed: %d PRs, held %v", len(ps), res.Held)
	}

	// 2. A minor release gets its own branch; the patch branch keeps 1.0.1.
	e.helm.Publish(t, "1.1.0")
	e.run(t)
	prs = e.prs(t)
	if len(prs["hl-bot/podinfo-1.x"]) != 1 {
		t.Fatalf("no minor branch: %v", keys(prs))
	}
	if got := e.file(t, "hl-bot/podinfo-1.0.x", "apps/web/Chart.yaml"); !strings.Contains(got, "version: 1.0.1 # pinned") {
		t.Errorf("patch branch took the minor:\n%s", got)
	}
	if got := e.file(t, "hl-bot/podinfo-1.x", "apps/web/Chart.yaml"); !strings.Contains(got, "version: 1.1.0 # pinned") {
		t.Errorf("minor branch:\n%s", got)
	}

	// 3. A merge scheduled on the patch PR is cancelled when the branch moves.
	p := prs["hl-bot/podinfo-1.0.x"][0]
	status := func(sha string, s sdk.StatusState) {
		t.Helper()
		if _, _, err := e.admin.CreateStatus(e.owner, e.name, sha, sdk.CreateStatusOption{State: s, Context: "ci/woodpecker/pr/validate"}); err != nil {
			t.Fatal(err)
		}
	}
	status(p.Head.Sha, sdk.StatusPending)
	if res := e.run(t); res.Count("automerge-scheduled") != 1 {
		t.Fatalf("no merge scheduled: %+v", res.Actions)
	}
	if q, _, err := e.admin.GetPullRequest(e.owner, e.name, p.Index); err != nil || q.HasMerged {
		t.Fatalf("merged while its status is pending: %v", err)
	}
	e.helm.Publish(t, "1.0.2")
	if res := e.run(t); res.Count("update") != 1 {
		t.Fatalf("patch PR not updated: %+v", res.Actions)
	}
	q, _, err := e.admin.GetPullRequest(e.owner, e.name, p.Index)
	if err != nil || q.Head.Sha == p.Head.Sha || q.HasMerged {
		t.Fatalf("head did not move, or the push merged it at once (merged %v): %v", q.HasMerged, err)
	}
	status(q.Head.Sha, sdk.StatusSuccess)
	time.Sleep(5 * time.Second) // Gitea merges a scheduled PR within a second or two of the status
	if q, _, err = e.admin.GetPullRequest(e.owner, e.name, p.Index); err != nil || q.HasMerged {
		t.Fatalf("merged on a success status after the branch moved (scheduled merge not cancelled): %v", err)
	}

	// 4. The next run judges the green branch and merges it, squashed.
	res = e.run(t)
	if res.Count("merge") != 1 {
		t.Fatalf("green patch PR not merged: %+v", res.Actions)
	}
	if q, _, err = e.admin.GetPullRequest(e.owner, e.name, p.Index); err != nil || !q.HasMerged {
		t.Fatalf("not merged: %v", err)
	}
	c, _, err := e.admin.GetSingleCommit(e.owner, e.name, *q.MergedCommitID)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Parents) != 1 {
		t.Errorf("merge commit has %d parents: not a squash", len(c.Parents))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestApproved reads only ticked boxes that carry an approval marker.
func TestApproved(t *testing.T) {
	body := "## Held\n\n- [x] <!-- hl-approve: ghcr.io/a/b@1.2.0 --> a\n- [ ] <!-- hl-approve: c@2.0.0 --> c\n- [X] <!-- hl-approve: d@v3 --> d\n- [x] some other box\n  - [x] <!-- hl-approve: nested@1 -->\n"
	got := run.Approved(body)
	if len(got) != 2 || !got["ghcr.io/a/b@1.2.0"] || !got["d@v3"] {
		t.Errorf("Approved = %v", got)
	}
}

// Gitea refuses a merge with 405 "Please try again later" while it is
// still checking a PR's mergeability after a push, and the PR reads
// mergeable: false meanwhile; the check takes seconds on a busy machine.
// The seam: a proxy in front of the real Gitea plays that state from the
// first merge request until the PR has been read three times (the check
// itself cannot be held open on demand). The bot waits for Gitea's check
// and merges in the same run. A merge refused for good while the PR reads
// mergeable (a branch rule) ends the run's automerge as waiting, with the
// refusal, after one more try, and merges nothing.
func TestMergeWaitsForGiteasCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		forGood bool
	}{
		{name: "checking"},
		{name: "refused", forGood: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.run(t)
			p := e.prs(t)["hl-bot/podinfo-1.0.x"][0]
			if _, _, err := e.admin.CreateStatus(e.owner, e.name, p.Head.Sha, sdk.CreateStatusOption{State: sdk.StatusSuccess, Context: "ci/woodpecker/pr/validate"}); err != nil {
				t.Fatal(err)
			}
			proxy, err := chaos.NewProxy(e.srv.URL, chaos.Faults{})
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			var refused, reads atomic.Int64
			checking := func() bool { return refused.Load() > 0 && reads.Load() < 3 }
			pull := fmt.Sprintf("/repos/%s/%s/pulls/%d", e.owner, e.name, p.Index)
			proxy.Rule(func(r *http.Request) *chaos.Fault {
				switch {
				case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, pull+"/merge"):
					if tc.forGood || refused.Load() == 0 || checking() {
						refused.Add(1)
						return &chaos.Fault{Kind: chaos.Status, Code: http.StatusMethodNotAllowed, Body: `{"message":"Please try again later","url":""}`}
					}
				case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, pull) && !tc.forGood && checking():
					reads.Add(1)
					return &chaos.Fault{Kind: chaos.Rewrite, Rewrite: func(b []byte) []byte {
						return []byte(strings.Replace(string(b), `"mergeable":true`, `"mergeable":false`, 1))
					}}
				}
				return nil
			})
			f, err := giteaforge.New(giteaforge.Options{URL: proxy.URL, Token: e.botToken, Owner: e.owner, Repo: e.name,
				Backoff: 10 * time.Millisecond, MergeWait: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			o := e.opts
			o.Forge = f
			res, err := run.Run(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			q, _, err := e.admin.GetPullRequest(e.owner, e.name, p.Index)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.forGood {
				if res.Count("merge") != 1 || !q.HasMerged || refused.Load() != 1 || reads.Load() != 3 {
					t.Errorf("refused %d times, read %d times as unmergeable while checking: merged %v, actions %+v", refused.Load(), reads.Load(), q.HasMerged, res.Actions)
				}
				return
			}
			var waiting string
			for _, a := range res.Actions {
				if a.Verb == "automerge-waiting" && a.PR == int(p.Index) {
					waiting = a.Detail
				}
			}
			if q.HasMerged || res.Count("merge") != 0 || !strings.Contains(waiting, "refused (HTTP 405") || refused.Load() != 3 {
				t.Errorf("a merge refused for good: merged %v after %d refusals (want 3: the first, then two while mergeable), waiting %q, actions %+v", q.HasMerged, refused.Load(), waiting, res.Actions)
			}
		})
	}
}
