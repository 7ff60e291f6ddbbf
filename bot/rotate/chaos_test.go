package rotate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/forge"
	giteaforge "hl.dev/hl/bot/forge/gitea"
	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/gitea/testserver"
	"hl.dev/hl/secrets"
)

// The rotation pass under chaos: the real Gitea (API and git) behind a
// fault proxy that resets, drops, delays, truncates or answers a panic's
// 500 at a seeded rate, and each faulted pass interrupted at a seeded
// moment (its context cancelled: the in-process stand-in for a kill). No
// pass prints a server's stack trace. After the chaos stops, one normal
// pass converges: exactly one rotation PR, open, whose branch holds new
// values that decrypt; exactly one issue for the secret that cannot be
// rotated by a PR; no rotation branch without its PR; and a further pass
// opens nothing. `make chaos` runs CHAOS_RUNS seeds.
func TestPassUnderChaos(t *testing.T) {
	srv := testserver.ForTest(t)
	chaos.ForEach(t, []uint64{1}, func(t *testing.T, seed uint64) {
		dir, all := agedRepo(t, "dex/dex-clients", "gitea/gitea-admin")
		src, _ := secrets.Find(all, "dex/dex-clients")
		oldVals := values(t, dir, src.File, identities(t)...)
		f := pushRepo(t, srv, dir)
		proxy, err := chaos.NewProxy(srv.URL, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		opts := func() PassOptions {
			fg, err := giteaforge.New(giteaforge.Options{URL: proxy.URL, Token: f.token, Owner: f.owner, Repo: f.repo, Backoff: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return PassOptions{Forge: fg, Identities: identities(t), Now: func() time.Time { return fixedNow }}
		}
		const runs = 4
		for i := range uint64(runs) {
			s := seed*100 + i
			proxy.SetFaults(chaos.Faults{Seed: s, Rate: 0.15, MaxDelay: 300 * time.Millisecond})
			ctx, cancel := context.WithTimeout(t.Context(), chaos.Moment(s, 200*time.Millisecond, 5*time.Second))
			rep, err := Pass(ctx, opts())
			cancel()
			msg := fmt.Sprintf("%v %+v", err, rep)
			if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "PANIC") {
				t.Errorf("pass %d printed a server's stack trace: %.500s", i+1, msg)
			}
			t.Logf("chaos pass %d (%d of %d requests faulted): %.300v", i+1, len(proxy.Faulted()), len(proxy.Events()), err)
		}
		proxy.SetFaults(chaos.Faults{})
		if _, err := Pass(t.Context(), opts()); err != nil {
			t.Fatalf("the normal pass after the chaos: %v", err)
		}

		prs, err := f.ListPRs(t.Context(), forge.ListOptions{HeadPrefix: engine.RotationPrefix})
		if err != nil {
			t.Fatal(err)
		}
		var open []forge.PR
		for _, p := range prs {
			t.Logf("PR #%d %s (%s) head %s", p.Number, p.Title, p.State, p.Head)
			if p.State == forge.StateOpen {
				open = append(open, p)
			}
		}
		if len(open) != 1 || len(prs) != 1 {
			t.Fatalf("%d rotation PRs (%d open), want exactly 1", len(prs), len(open))
		}
		branchDir := t.TempDir()
		if _, err := git.PlainClone(branchDir, false, &git.CloneOptions{URL: f.CloneURL(), Auth: f.Auth(),
			ReferenceName: plumbing.NewBranchReferenceName(open[0].Head), SingleBranch: true}); err != nil {
			t.Fatal(err)
		}
		newVals := values(t, branchDir, src.File, identities(t)...)
		for k, v := range oldVals {
			if newVals[k] == "" || newVals[k] == v {
				t.Errorf("key %s of %s not rotated on %s", k, src.File, open[0].Head)
			}
		}

		issues, _, err := f.c.ListRepoIssues(f.owner, f.repo, gitea.ListIssueOption{Type: gitea.IssueTypeIssue, State: gitea.StateAll, ListOptions: gitea.ListOptions{PageSize: 50}})
		if err != nil {
			t.Fatal(err)
		}
		title := IssueTitle(secrets.Secret{Namespace: "gitea", Name: "gitea-admin"})
		n := 0
		for _, is := range issues {
			if is.Title == title {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d issues %q, want 1", n, title)
		}

		branches, _, err := f.c.ListRepoBranches(f.owner, f.repo, gitea.ListRepoBranchesOptions{ListOptions: gitea.ListOptions{PageSize: 50}})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range branches {
			if strings.HasPrefix(b.Name, engine.RotationPrefix) && b.Name != open[0].Head {
				t.Errorf("orphan rotation branch %s", b.Name)
			}
		}

		rep, err := Pass(t.Context(), opts())
		if err != nil {
			t.Fatalf("a further pass: %v", err)
		}
		if len(rep.PRs)+len(rep.Issues) != 0 {
			t.Errorf("a further pass opened %+v", rep)
		}
	})
}
