package bootstrap

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"

	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/gitea/testserver"
)

// bootstrapCommand is `hl bootstrap gitea` of dir into opts' owner, repo
// and bot user at url, as a user runs it.
func bootstrapCommand(t *testing.T, bin, url string, opts Options) chaos.Runner {
	key, err := filepath.Abs(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return chaos.Runner{Command: func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, "bootstrap", "gitea", "--dir", opts.Dir, "--url", url,
			"--owner", opts.Owner, "--repo", opts.Repo, "--bot-user", opts.BotUser, "--age-key", key)
		cmd.Env = append(os.Environ(), "HL_GITEA_TOKEN="+opts.Token)
		return cmd
	}}
}

// requireConverged runs bootstrap once more in-process: it changes
// nothing, the forge holds no duplicates, and the repository holds the
// rendered tree as its one commit.
func requireConverged(t *testing.T, srv *testserver.Server, opts Options) {
	t.Helper()
	res, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatalf("a further run: %v", err)
	}
	requireAllUnchanged(t, res)
	requireNoDuplicates(t, srv, opts)
	got, _ := cloneFiles(t, srv.URL+"/"+opts.Owner+"/"+opts.Repo+".git", srv.AdminToken)
	compareFiles(t, got, dirFiles(t, opts.Dir))
}

// noStackTrace fails when a command printed a server's stack trace.
func noStackTrace(t *testing.T, what string, o chaos.Outcome) {
	t.Helper()
	if out := o.Output(); strings.Contains(out, "goroutine ") || strings.Contains(out, "PANIC") {
		t.Errorf("%s printed a stack trace:\n%s", what, out)
	}
}

// hl bootstrap gitea on the full fixture, run as a process against the
// real Gitea, is SIGKILLed at a seeded moment between 0.1 and 2.5 s
// (anywhere from the first API call to the first push), killed again 0.7 s
// into a re-run, then run normally: the normal run succeeds, a further run
// changes nothing, and the forge holds exactly one repository with the
// rendered tree as its one commit, the reader and the bot as its only
// collaborators, no deploy key (Argo CD clones over HTTP as the reader),
// the three webhooks, the labels, one bot token and one branch protection.
// `make test` runs the fixed seeds; `make chaos` runs CHAOS_RUNS of them.
func TestBootstrapKilledAndRerun(t *testing.T) {
	srv := testserver.ForTest(t)
	bin := chaos.Binary(t, "hl.dev/hl/cmd/hl")
	chaos.ForEach(t, []uint64{1, 2}, func(t *testing.T, seed uint64) {
		opts := options(t, srv, renderFull(t))
		run := bootstrapCommand(t, bin, srv.URL, opts)
		kills := []time.Duration{chaos.Moment(seed, 100*time.Millisecond, 2500*time.Millisecond), 700 * time.Millisecond}
		outs := run.KillThenRun(t.Context(), kills)
		for i, o := range outs {
			lines := strings.Split(strings.TrimSpace(string(o.Stdout)), "\n")
			t.Logf("run %d: %v; last step reported: %s", i+1, o, lines[len(lines)-1])
			noStackTrace(t, "hl bootstrap gitea", o)
		}
		if last := outs[len(outs)-1]; last.Err != nil {
			t.Fatalf("the normal run after the kills failed: %v\n%s", last.Err, last.Output())
		}
		requireConverged(t, srv, opts)
		admin := adminClient(t, srv)
		repos, _, err := admin.ListOrgRepos(opts.Owner, gitea.ListOrgReposOptions{})
		if err != nil || len(repos) != 1 {
			t.Errorf("repositories of %s: %d (%v), want 1", opts.Owner, len(repos), err)
		}
		if keys, _, err := admin.ListDeployKeys(opts.Owner, opts.Repo, gitea.ListDeployKeysOptions{}); err != nil || len(keys) != 0 {
			t.Errorf("deploy keys %d (%v), want none", len(keys), err)
		}
		if _, _, err := admin.GetUserInfo(opts.BotUser); err != nil {
			t.Errorf("bot user %s: %v", opts.BotUser, err)
		}
	})
}

// The case, the kill put inside the first push: the proxy passes
// the push on, holds Gitea's answer back from hl, and SIGKILLs hl a seeded
// moment (0 to 600 ms) after the pack was sent; hl's connection closes and
// Gitea's request is cancelled midway if Gitea is still taking the pack,
// or it has landed unheard (a fast machine). The hold makes the kill land
// inside the push on any machine (an earlier version let a fast Gitea
// answer first, and the run finished before the kill). hl is run again at once, when Gitea
// may hold the branch in git while still flagging the repository empty (it
// answers the branch lookup with a 500 then): the re-run waits for Gitea
// instead of failing, and converges — the push found (kept) or made again.
func TestBootstrapKilledDuringFirstPush(t *testing.T) {
	srv := testserver.ForTest(t)
	bin := chaos.Binary(t, "hl.dev/hl/cmd/hl")
	chaos.ForEach(t, []uint64{1}, func(t *testing.T, seed uint64) {
		proxy, err := chaos.NewProxy(srv.URL, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		opts := options(t, srv, renderFull(t))
		opts.URL = proxy.URL // the stored credentials name the URL the runs use
		run := bootstrapCommand(t, bin, proxy.URL, opts)
		kill := make(chan struct{})
		var once sync.Once
		cut := chaos.Moment(seed, 0, 600*time.Millisecond)
		proxy.Rule(func(r *http.Request) *chaos.Fault {
			var f *chaos.Fault
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
				once.Do(func() { f = &chaos.Fault{Kind: chaos.Cut, Delay: cut, Then: func() { close(kill) }} })
			}
			return f
		})
		first := run.KillOn(t.Context(), kill)
		if !first.Killed {
			t.Fatalf("the first run was not killed in its push: %v\n%s", first, first.Output())
		}
		proxy.Rule(nil)
		second := run.Run(t.Context())
		noStackTrace(t, "hl bootstrap gitea", second)
		if second.Err != nil {
			t.Fatalf("the re-run failed: %v\n%s", second.Err, second.Output())
		}
		for _, l := range strings.Split(string(second.Stdout), "\n") {
			if strings.Contains(l, " push ") {
				t.Logf("killed %v after the pack was sent; re-run: %s", cut, l)
			}
		}
		requireConverged(t, srv, opts)
	})
}

// hl bootstrap gitea on the full fixture while Gitea itself is SIGKILLed
// (with the git processes it runs) after a seeded number of the run's
// requests (1 to 35 of about 40) and started again a second later with its data: the
// run rides it out or stops without a stack trace; a re-run completes, a
// further run changes nothing, and the forge holds no duplicates and the
// rendered tree. Gitea is the test's own (the shared one is never killed);
// a proxy in front of it only counts requests.
func TestBootstrapGiteaKilledAndRestarted(t *testing.T) {
	bin := chaos.Binary(t, "hl.dev/hl/cmd/hl")
	chaos.ForEach(t, []uint64{1}, func(t *testing.T, seed uint64) {
		srv := testserver.New(t, testserver.Options{})
		proxy, err := chaos.NewProxy(srv.URL, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		opts := options(t, srv, renderFull(t))
		opts.URL = proxy.URL
		run := bootstrapCommand(t, bin, proxy.URL, opts)
		// A run against a fresh Gitea makes about 40 requests.
		n := 1 + int(chaos.Moment(seed, 0, 35*time.Millisecond)/time.Millisecond)
		stopped := proxy.KillAfter(n, srv.Kill, func() error { return srv.Restart(context.Background()) })
		first := run.Run(t.Context())
		killed, rerr := stopped()
		if rerr != nil {
			t.Fatalf("Gitea did not start again: %v", rerr)
		}
		if !killed {
			t.Fatalf("the run ended after %d requests, before the kill at %d: the seed proves nothing", len(proxy.Events()), n)
		}
		t.Logf("Gitea killed after request %d (%s)", n, proxy.Events()[n-1])
		last := strings.Split(strings.TrimSpace(first.Output()), "\n")
		t.Logf("the run Gitea died under: %v (%d requests); it ended with: %s", first, len(proxy.Events()), last[len(last)-1])
		noStackTrace(t, "hl bootstrap gitea", first)
		second := run.Run(t.Context())
		noStackTrace(t, "hl bootstrap gitea", second)
		if second.Err != nil {
			t.Fatalf("the re-run failed: %v\n%s", second.Err, second.Output())
		}
		requireConverged(t, srv, opts)
	})
}

// A server's error answer reaches the user as one line naming the request
// and the status, never as the body: a reverse proxy in front of the real
// Gitea answers one request with a 500 and a Go panic's stack trace. A read
// is retried and the run succeeds; a create is not retried (Gitea may have
// done it) and the run stops with the one line. The body is in the debug
// log, which --log-level debug shows.
func TestBootstrapServerErrorIsOneLine(t *testing.T) {
	srv := testserver.ForTest(t)
	bin := chaos.Binary(t, "hl.dev/hl/cmd/hl")
	tests := []struct {
		name     string
		method   string
		path     string // suffix of the request's path
		fails    bool
		wantLine string
		args     []string
	}{
		{name: "a read answered 500 once is retried", method: http.MethodGet, path: "/api/v1/user"},
		{name: "a create answered 500 stops the run with one line", method: http.MethodPost, path: "/api/v1/orgs", fails: true,
			wantLine: "POST /api/v1/orgs: HTTP 500 Internal Server Error"},
		{name: "the debug log has the body", method: http.MethodPost, path: "/api/v1/orgs", fails: true,
			wantLine: "POST /api/v1/orgs: HTTP 500 Internal Server Error", args: []string{"--log-level", "debug"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxy, err := chaos.NewProxy(srv.URL, chaos.Faults{})
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			var once sync.Once
			proxy.Rule(func(r *http.Request) *chaos.Fault {
				var f *chaos.Fault
				if r.Method == tc.method && strings.HasSuffix(r.URL.Path, tc.path) {
					once.Do(func() { f = &chaos.Fault{Kind: chaos.Status, Code: 500} })
				}
				return f
			})
			opts := options(t, srv, renderFixture(t, smallConfig))
			run := bootstrapCommand(t, bin, proxy.URL, opts)
			if tc.args != nil {
				base := run.Command
				run.Command = func(ctx context.Context) *exec.Cmd {
					cmd := base(ctx)
					cmd.Args = append(cmd.Args, tc.args...)
					return cmd
				}
			}
			o := run.Run(t.Context())
			if len(proxy.Faulted()) != 1 {
				t.Fatalf("faulted %v, want one request", proxy.Faulted())
			}
			if (o.Err != nil) != tc.fails {
				t.Fatalf("run: %v, want failure %v\n%s", o.Err, tc.fails, o.Output())
			}
			if tc.args == nil {
				noStackTrace(t, "hl bootstrap gitea", o)
			} else if !strings.Contains(string(o.Stderr), "goroutine 117 [running]") {
				t.Errorf("the debug log lacks the server's answer:\n%s", o.Stderr)
			}
			if tc.wantLine == "" {
				return
			}
			t.Logf("output:\n%.2000s", o.Output())
			var lines []string
			for _, l := range strings.Split(o.Output(), "\n") {
				if strings.Contains(l, tc.wantLine) && !strings.Contains(l, "level=DEBUG") {
					lines = append(lines, l)
				}
			}
			if len(lines) == 0 {
				t.Errorf("no line names the request %q:\n%s", tc.wantLine, o.Output())
			}
			for _, l := range lines {
				if len(l) > 400 {
					t.Errorf("the error line is %d characters: %s", len(l), l)
				}
			}
		})
	}
}

// Gitea's just-pushed state: git holds the branch while the repository is
// still flagged empty, and Gitea answers the branch lookup with a 500 (a
// panic) until it catches up — seen with a real Gitea 1.26 after a killed
// push, but not produced on demand here (TestBootstrapKilledDuringFirstPush:
// the cancelled pushes left no branch). Seam: the proxy plays that state
// in front of the real Gitea for 4 s from the first branch lookup — the
// lookup answers a panic's 500 and the repository reads "empty": true —
// longer than the transport's retries last. The run waits it out and
// finds its push instead of failing.
func TestBootstrapWaitsWhileGiteaFlagsEmpty(t *testing.T) {
	srv := testserver.ForTest(t)
	proxy, err := chaos.NewProxy(srv.URL, chaos.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	opts := options(t, srv, renderFixture(t, smallConfig))
	opts.URL = proxy.URL
	if _, err := Run(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		start time.Time
	)
	repoPath := "/api/v1/repos/" + opts.Owner + "/" + opts.Repo
	proxy.Rule(func(r *http.Request) *chaos.Fault {
		mu.Lock()
		defer mu.Unlock()
		if r.Method != http.MethodGet {
			return nil
		}
		if r.URL.Path == repoPath+"/branches/main" && start.IsZero() {
			start = time.Now()
		}
		if start.IsZero() || time.Since(start) > 4*time.Second {
			return nil
		}
		switch r.URL.Path {
		case repoPath + "/branches/main":
			return &chaos.Fault{Kind: chaos.Status, Code: http.StatusInternalServerError}
		case repoPath:
			return &chaos.Fault{Kind: chaos.Rewrite, Rewrite: func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"empty":false`), []byte(`"empty":true`), 1)
			}}
		}
		return nil
	})
	res, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatalf("re-run in Gitea's just-pushed state: %v", err)
	}
	requireAllUnchanged(t, res)
	var empty, panics int
	for _, e := range proxy.Faulted() {
		switch e.Fault {
		case chaos.Rewrite:
			empty++
		case chaos.Status:
			panics++
		}
	}
	if empty < 2 || panics < 2 {
		t.Errorf("the state was not played: %d empty answers, %d panics (%v)", empty, panics, proxy.Faulted())
	}
}
