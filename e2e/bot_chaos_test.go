package e2e_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot/engine"
	"hl.dev/hl/bot/run"
	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/secrets"
)

// TestBotServeUnderChaos runs `hl bot serve` as rendered (the hl-bot
// Deployment's container from hl's image, as TestBotAsRendered does) with
// Gitea and the chart repositories and registry each behind a fault proxy
// (10 % of requests reset, dropped after the server acted, delayed,
// truncated or answered with a panic's 500), and SIGKILLs the container's
// process group — an OOM kill, a node losing power — after a seeded
// number of its Gitea requests, three times, starting it again each time
// as a kubelet restarts a container. Then, the chaos stopped, one start
// runs its pass to the end and a signed webhook's run after it: exactly
// one PR for each of the three changes and no other PR, no hl-bot/ branch
// without its PR, one dependency dashboard, the rotated secret decrypts
// with the homelab's key and holds a new value, the second run opened
// nothing, and no line any start logged carries a server's stack trace.
//
// Seams: those of TestBotAsRendered (the pod in the host's network
// namespace, the Gitea Service a loopback proxy, the webhook delivered by
// the test); the restart is the test's, not a kubelet's.
func TestBotServeUnderChaos(t *testing.T) {
	chaos.ForEach(t, []uint64{1}, func(t *testing.T, seed uint64) {
		proxies := map[string]*chaos.Proxy{}
		front := func(target string) string {
			p, err := chaos.NewProxy(target, chaos.Faults{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			proxies[target] = p
			return p.URL
		}
		b := newBotLab(t, front)
		gproxy := proxies[b.srv.URL]
		if gproxy == nil || len(proxies) != 2 {
			t.Fatalf("want proxies in front of Gitea and the chart servers, have %d", len(proxies))
		}
		var logs testharness.SyncBuffer
		b.pod.Stdout, b.pod.Stderr = &logs, &logs
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("bot log (every start):\n%s", logs.String())
			}
		})
		base := fmt.Sprintf("http://127.0.0.1:%d", botPort)

		const kills = 3
		midRun := 0
		for k := range uint64(kills) {
			s := seed*10 + k
			i := uint64(0)
			for _, target := range sortedTargets(proxies) {
				proxies[target].SetFaults(chaos.Faults{Seed: s<<8 | i, Rate: 0.1, MaxDelay: 300 * time.Millisecond})
				i++
			}
			// 1 to 25 requests into this start: the clone of the
			// repository, the pass's reads, its branch pushes and PRs (a
			// pass a fault ends early makes about 25).
			n := len(gproxy.Events()) + 1 + int(chaos.Moment(s, 0, 25*time.Millisecond)/time.Millisecond)
			fmt.Fprintf(&logs, "--- start %d (killed after Gitea request %d)\n", k+1, n)
			proc, err := b.pod.Start(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { _, _ = proc.Wait(); close(exited) }()
			why := waitForKill(gproxy, n, base, exited)
			proc.Kill()
			<-exited
			ev := gproxy.Events()
			last := "none"
			if len(ev) > 0 {
				last = ev[len(ev)-1].String()
			}
			t.Logf("start %d: %s; killed after %d Gitea requests (the last %s), %d faulted so far",
				k+1, why, len(ev), last, len(gproxy.Faulted()))
			if why == "mid-run" {
				midRun++
			}
		}
		if midRun == 0 {
			t.Fatal("no kill landed in the middle of a run: the seed proves nothing")
		}
		for _, p := range proxies {
			p.SetFaults(chaos.Faults{})
		}

		fmt.Fprintf(&logs, "--- the start after the chaos\n")
		stop := b.serve(t, base)
		waitFor(t, 8*time.Minute, "the end of the start's run", func() error {
			if n := runsCounted(get(t, base+"/metrics")); n < 1 {
				return fmt.Errorf("%d runs counted", n)
			}
			return nil
		})
		admin, err := gitea.NewClient(b.srv.URL, gitea.SetToken(b.srv.AdminToken))
		if err != nil {
			t.Fatal(err)
		}
		found := b.foundPRs(t, admin)
		before := allPRs(t, admin)

		payload := []byte(`{"action":"closed","pull_request":{"merged":true,"head":{"ref":"hl-bot/e2e-merged"}},"sender":{"login":"admin"}}`)
		if code, body := deliver(t, base, payload, sign(b.webhookSecret, payload), "chaos-1"); code != http.StatusAccepted {
			t.Fatalf("webhook delivery: HTTP %d %q, want 202 (a run triggered)", code, body)
		}
		waitFor(t, 8*time.Minute, "the end of the webhook's run", func() error {
			if n := runsCounted(get(t, base+"/metrics")); n < 2 {
				return fmt.Errorf("%d runs counted", n)
			}
			return nil
		})
		after := allPRs(t, admin)
		if len(after) != len(before) {
			t.Errorf("the run after the converged one changed the PRs: %d before, %d after", len(before), len(after))
		}

		// Exactly the three PRs, one per branch, whatever their state.
		byHead := map[string][]*gitea.PullRequest{}
		for _, pr := range after {
			byHead[pr.Head.Name] = append(byHead[pr.Head.Name], pr)
			t.Logf("PR #%d %s (%s): %s", pr.Index, pr.Head.Name, pr.State, pr.Title)
		}
		if len(after) != len(b.wantPRs) {
			t.Errorf("%d PRs on the repository, want %d (one per change)", len(after), len(b.wantPRs))
		}
		for head, prs := range byHead {
			if len(prs) != 1 {
				t.Errorf("branch %s has %d PRs", head, len(prs))
			}
		}
		branches, _, err := admin.ListRepoBranches("homelab", "cluster", gitea.ListRepoBranchesOptions{ListOptions: gitea.ListOptions{PageSize: 50}})
		if err != nil {
			t.Fatal(err)
		}
		for _, br := range branches {
			if strings.HasPrefix(br.Name, engine.BranchPrefix) && len(byHead[br.Name]) == 0 {
				t.Errorf("orphan branch %s: no PR", br.Name)
			}
		}
		issues, _, err := admin.ListRepoIssues("homelab", "cluster", gitea.ListIssueOption{Type: gitea.IssueTypeIssue, State: gitea.StateAll, ListOptions: gitea.ListOptions{PageSize: 50}})
		if err != nil {
			t.Fatal(err)
		}
		dashboards := 0
		for _, is := range issues {
			if is.Title == run.DashboardTitle {
				dashboards++
			}
		}
		if dashboards != 1 {
			t.Errorf("%d dependency dashboards, want 1", dashboards)
		}

		// The rotated secret decrypts with the homelab's key, and its
		// value is new.
		rot := found["rotation of "+b.due.Namespace+"/"+b.due.Name]
		newFile, _, err := admin.GetFile("homelab", "cluster", rot.Head.Ref, b.due.File)
		if err != nil {
			t.Fatal(err)
		}
		oldFile, _, err := admin.GetFile("homelab", "cluster", "main", b.due.File)
		if err != nil {
			t.Fatal(err)
		}
		newPlain, err := secrets.Decrypt(newFile, b.lab.Identities...)
		if err != nil {
			t.Fatalf("the rotated %s does not decrypt: %v", b.due.File, err)
		}
		oldPlain, err := secrets.Decrypt(oldFile, b.lab.Identities...)
		if err != nil {
			t.Fatal(err)
		}
		if string(newPlain) == string(oldPlain) {
			t.Errorf("the rotation PR's %s holds the old value", b.due.File)
		}

		stop()
		out := logs.String()
		if strings.Contains(out, "goroutine ") || strings.Contains(out, "PANIC") {
			t.Errorf("a start logged a stack trace (a server's, or its own crash)")
		}
		if strings.Contains(out, b.webhookSecret) || strings.Contains(out, string(b.lab.AgeKey)) {
			t.Error("the bot's log shows a secret value")
		}
	})
}

// waitForKill waits until the proxy has seen n requests, the process
// exited on its own, or the start's run ended (the bot idles until its
// schedule), and says which.
func waitForKill(p *chaos.Proxy, n int, base string, exited <-chan struct{}) string {
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; ; i++ {
		if len(p.Events()) >= n {
			return "mid-run"
		}
		select {
		case <-exited:
			return "exited on its own (a crash a kubelet restarts)"
		case <-time.After(5 * time.Millisecond):
		}
		if i%100 == 99 && runsEnded(base) {
			return "its run had ended before the kill's request"
		}
		if time.Now().After(deadline) {
			return "no request for 5 minutes"
		}
	}
}

// runsEnded says whether the bot's /metrics counts a finished run.
func runsEnded(base string) bool {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return runsCounted(sb.String()) > 0
}

func allPRs(t *testing.T, admin *gitea.Client) []*gitea.PullRequest {
	t.Helper()
	prs, _, err := admin.ListRepoPullRequests("homelab", "cluster", gitea.ListPullRequestsOptions{State: gitea.StateAll, ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	return prs
}

func sortedTargets(m map[string]*chaos.Proxy) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
