package run_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	giteaforge "hl.dev/hl/bot/forge/gitea"
	"hl.dev/hl/bot/run"
	"hl.dev/hl/internal/chaos"
)

// A server's error answer reaches the user of hl bot run as one line
// naming the request, never as its body: a proxy in front of the real
// Gitea answers the first pull request create with a 500 and a Go panic's
// stack trace (a create is not retried). The run's error, which hl bot run
// prints, names the request and holds no stack trace; the next run,
// without the fault, opens the PR.
func TestBotRunServerErrorIsOneLine(t *testing.T) {
	e := newEnv(t)
	proxy, err := chaos.NewProxy(e.srv.URL, chaos.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	pulls := "/api/v1/repos/" + e.owner + "/" + e.name + "/pulls"
	var once sync.Once
	proxy.Rule(func(r *http.Request) *chaos.Fault {
		var f *chaos.Fault
		if r.Method == http.MethodPost && r.URL.Path == pulls {
			once.Do(func() { f = &chaos.Fault{Kind: chaos.Status, Code: http.StatusInternalServerError} })
		}
		return f
	})
	f, err := giteaforge.New(giteaforge.Options{URL: proxy.URL, Token: e.botToken, Owner: e.owner, Repo: e.name,
		Backoff: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	o := e.opts
	o.Forge, o.Concurrency = f, 1
	_, err = run.Run(t.Context(), o)
	if len(proxy.Faulted()) != 1 {
		t.Fatalf("faulted %v, want the one create", proxy.Faulted())
	}
	if err == nil {
		t.Fatal("the run hid the failed create")
	}
	msg := err.Error()
	if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "PANIC") {
		t.Errorf("the run's error holds the server's stack trace:\n%s", msg)
	}
	if want := "POST " + pulls + ": HTTP 500 Internal Server Error"; !strings.Contains(msg, want) {
		t.Errorf("the error does not name the request (%q):\n%s", want, msg)
	}
	if _, err := run.Run(t.Context(), o); err != nil {
		t.Fatalf("the run after the fault: %v", err)
	}
	if n := len(e.prs(t)); n != 3 {
		t.Errorf("%d branches with PRs after the fault, want 3", n)
	}
}
