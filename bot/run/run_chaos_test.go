package run_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	"hl.dev/hl/bot/engine"
	giteaforge "hl.dev/hl/bot/forge/gitea"
	"hl.dev/hl/bot/run"
	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/gitea/testserver"
)

// The upgrade pass under chaos: the real Gitea (API and git), the Helm
// repository and the image's OCI registry each behind a fault proxy that resets, drops, delays,
// truncates or answers a panic's 500 at a seeded rate, and each faulted run
// interrupted at a seeded moment (its context cancelled: the in-process
// stand-in for a kill). No run prints a server's stack trace. After the
// chaos stops, one normal run converges: exactly one PR per bot branch, no
// bot branch without its PR, the three updates' PRs, and a further run
// creates nothing. `make chaos` runs CHAOS_RUNS seeds.
//
// In `make test` with the fixed seed 1; `make chaos` runs CHAOS_RUNS
// more. Seed 1 once failed here: after the normal run converged, a
// further run hit Gitea's "pull request already exists for these targets"
// on hl-bot/app-web-1.x. Gitea answers a PR whose head branch its branch
// table does not list (an interrupted push) with head ref
// refs/pull/N/head, and the bot matched PRs by that ref, so it missed its
// own open PR. The bot now knows a PR by its head label
// (TestPRWithoutItsBranch holds that against the real Gitea); since then
// 49 seeds of 49 passed (seed 1, 1001–1008, 2001–2040).
func TestBotRunUnderChaos(t *testing.T) {
	chaos.ForEach(t, []uint64{1}, func(t *testing.T, seed uint64) {
		e := newEnv(t)
		forgeProxy, err := chaos.NewProxy(e.srv.URL, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		defer forgeProxy.Close()
		helmProxy, err := chaos.NewProxy(e.helm.URL, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		defer helmProxy.Close()
		regProxy, err := chaos.NewProxy("http://"+e.regHost, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		defer regProxy.Close()
		regProxyHost := strings.TrimPrefix(regProxy.URL, "http://")
		// The chart's repository and the image's registry are the proxies,
		// as mirrors would be.
		chart := e.file(t, "main", "apps/web/Chart.yaml")
		values := e.file(t, "main", "apps/web/values.yaml")
		e.push(t, e.owner, e.botToken, map[string]string{
			"apps/web/Chart.yaml":  strings.Replace(chart, e.helm.URL, helmProxy.URL, 1),
			"apps/web/values.yaml": strings.Replace(values, e.regHost, regProxyHost, 1),
		}, "chart and image through the proxies")

		opts := func() run.Options {
			o := e.quietOptionsVia(t, forgeProxy.URL, 20*time.Millisecond)
			o.Lookup.InsecureRegistries = []string{regProxyHost}
			return o
		}
		const runs = 4
		for i := range uint64(runs) {
			s := seed*100 + i
			faults := chaos.Faults{Seed: s, Rate: 0.12, MaxDelay: 300 * time.Millisecond}
			forgeProxy.SetFaults(faults)
			faults.Seed = ^s
			helmProxy.SetFaults(faults)
			// The registry sees a few requests a run (tags, a manifest):
			// a higher rate, so that its faults happen at all.
			faults.Seed, faults.Rate = s^0x5eed, 0.35
			regProxy.SetFaults(faults)
			ctx, cancel := context.WithTimeout(t.Context(), chaos.Moment(s, 200*time.Millisecond, 6*time.Second))
			res, err := run.Run(ctx, opts())
			cancel()
			msg := fmt.Sprint(err)
			if res != nil {
				msg += fmt.Sprintf(" %+v", res.Actions)
			}
			if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "PANIC") {
				t.Errorf("run %d printed a server's stack trace: %.500s", i+1, msg)
			}
			t.Logf("chaos run %d (%d forge, %d Helm and %d registry requests faulted): %.300v", i+1,
				len(forgeProxy.Faulted()), len(helmProxy.Faulted()), len(regProxy.Faulted()), err)
		}
		if len(regProxy.Events()) == 0 {
			t.Fatal("no image lookup went through the registry's proxy")
		}
		forgeProxy.SetFaults(chaos.Faults{})
		helmProxy.SetFaults(chaos.Faults{})
		regProxy.SetFaults(chaos.Faults{})
		if _, err := run.Run(t.Context(), opts()); err != nil {
			t.Fatalf("the normal run after the chaos: %v", err)
		}
		requireBotConverged(t, e, opts())
	})
}

// The upgrade pass while Gitea itself is SIGKILLed (with the git processes
// it runs) after a seeded number of the run's requests and started again a
// second later with its data: the run rides it out or stops without a
// stack trace; the next run converges (one PR per bot branch, the three
// updates' PRs, no bot branch without its PR) and a further run creates
// nothing. Gitea is the test's own (the shared one is never killed); a
// proxy in front of it only counts requests.
func TestBotRunGiteaKilledAndRestarted(t *testing.T) {
	chaos.ForEach(t, []uint64{1}, func(t *testing.T, seed uint64) {
		srv := testserver.New(t, testserver.Options{})
		e := newEnvOn(t, srv)
		proxy, err := chaos.NewProxy(srv.URL, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		opts := func() run.Options { return e.quietOptionsVia(t, proxy.URL, 50*time.Millisecond) }
		// A first run on this repository makes about 25 requests.
		n := 1 + int(chaos.Moment(seed, 0, 20*time.Millisecond)/time.Millisecond)
		stopped := proxy.KillAfter(n, srv.Kill, func() error { return srv.Restart(context.Background()) })
		res, err := run.Run(t.Context(), opts())
		killed, rerr := stopped()
		if rerr != nil {
			t.Fatalf("Gitea did not start again: %v", rerr)
		}
		if !killed {
			t.Fatalf("the run ended after %d requests, before the kill at %d: the seed proves nothing", len(proxy.Events()), n)
		}
		t.Logf("Gitea killed after request %d (%s)", n, proxy.Events()[n-1])
		msg := fmt.Sprint(err)
		if res != nil {
			msg += fmt.Sprintf(" %+v", res.Actions)
		}
		if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "PANIC") {
			t.Errorf("the run printed a server's stack trace: %.500s", msg)
		}
		t.Logf("the run Gitea died under (%d requests): %.300v", len(proxy.Events()), err)

		if _, err := run.Run(t.Context(), opts()); err != nil {
			t.Fatalf("the next run: %v", err)
		}
		requireBotConverged(t, e, opts())
	})
}

// requireBotConverged: one PR per bot branch, the three updates' PRs, no
// bot branch without its PR, and a further run creates nothing.
func requireBotConverged(t *testing.T, e *env, o run.Options) {
	t.Helper()
	prs := e.prs(t)
	for head, ps := range prs {
		for _, p := range ps {
			t.Logf("PR #%d %s head %s state %s", p.Index, p.Title, head, p.State)
		}
		if len(ps) != 1 {
			t.Errorf("%s: %d PRs, want 1", head, len(ps))
		}
	}
	if len(prs) != 3 {
		t.Errorf("%d branches with PRs, want 3: %v", len(prs), keys(prs))
	}
	branches, _, err := e.admin.ListRepoBranches(e.owner, e.name, sdk.ListRepoBranchesOptions{ListOptions: sdk.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range branches {
		if strings.HasPrefix(b.Name, engine.BranchPrefix) && len(prs[b.Name]) == 0 {
			t.Errorf("orphan branch %s: no PR", b.Name)
		}
	}
	res, err := run.Run(t.Context(), o)
	if err != nil {
		t.Fatalf("a further run: %v", err)
	}
	if res.Count("create") != 0 {
		t.Errorf("a further run created again: %+v", res.Actions)
	}
}

// quietOptionsVia are the env's options with the forge reached at url (a
// proxy in front of its Gitea) and no log.
func (e *env) quietOptionsVia(t *testing.T, url string, backoff time.Duration) run.Options {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f, err := giteaforge.New(giteaforge.Options{URL: url, Token: e.botToken, Owner: e.owner, Repo: e.name, Backoff: backoff, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	o := e.opts
	o.Forge, o.Logger = f, quiet
	return o
}
