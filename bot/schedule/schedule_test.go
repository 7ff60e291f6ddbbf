package schedule

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestScheduleRunsPassesAndStops(t *testing.T) {
	var n atomic.Int32
	d, err := New(Options{Schedule: "* * * * * *", Seconds: true, Timezone: "Europe/Berlin", LockFile: filepath.Join(t.TempDir(), "lock"),
		Passes: []Pass{{Name: "count", Run: func(context.Context) error { n.Add(1); return nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	waitFor(t, "two runs", func() bool { return n.Load() >= 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestEveryDescriptor(t *testing.T) {
	d, err := New(Options{Schedule: "@every 1s"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if next := d.Next(now); next.Sub(now) > 2*time.Second {
		t.Fatalf("next %v", next)
	}
	if _, err := New(Options{Schedule: "not cron"}); err == nil {
		t.Fatal("bad schedule accepted")
	}
}

func TestRefusesOverlap(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "lock")
	started, release := make(chan struct{}), make(chan struct{})
	d, _ := New(Options{Schedule: "@daily", LockFile: lock, Passes: []Pass{{Name: "slow", Run: func(context.Context) error {
		close(started)
		<-release
		return nil
	}}}})
	errc := make(chan error, 1)
	go func() { errc <- d.RunOnce(t.Context(), "test") }()
	<-started
	if err := d.RunOnce(t.Context(), "overlap"); !errors.Is(err, ErrBusy) {
		t.Fatalf("overlapping run: %v", err)
	}
	// Another process (another daemon on the same lock file) is refused too.
	other, _ := New(Options{Schedule: "@daily", LockFile: lock, Passes: []Pass{{Name: "x", Run: func(context.Context) error { return nil }}}})
	if err := other.RunOnce(t.Context(), "other"); !errors.Is(err, ErrBusy) {
		t.Fatalf("run from another daemon: %v", err)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := other.RunOnce(t.Context(), "after"); err != nil {
		t.Fatalf("lock not released: %v", err)
	}
	var b strings.Builder
	d.Metrics.WriteTo(&b)
	if !strings.Contains(b.String(), `hl_bot_runs_total{result="refused"} 1`) {
		t.Errorf("metrics:\n%s", b.String())
	}
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestHTTPEndpoints(t *testing.T) {
	var n atomic.Int32
	d, _ := New(Options{Schedule: "@daily", WebhookSecret: "s3cret", Passes: []Pass{
		{Name: "rotate", Run: func(context.Context) error { n.Add(1); return nil }},
	}})
	d.Metrics.SetSecretsOverdue(3)
	d.Metrics.AddPRsOpened("rotation", 1)
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	get := func(p string) (int, string) {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	post := func(event, body, sig string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/webhook", strings.NewReader(body))
		req.Header.Set("X-Gitea-Event", event)
		req.Header.Set("X-Gitea-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	merged := `{"action":"closed","pull_request":{"merged":true,"head":{"ref":"hl-bot/rotate/dex-dex-clients"}}}`
	if code := post("pull_request", merged, sign("wrong", merged)); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", code)
	}
	if code := post("pull_request", merged, "zz"); code != http.StatusUnauthorized {
		t.Fatalf("garbage signature: %d", code)
	}
	if n.Load() != 0 {
		t.Fatal("a rejected webhook ran a pass")
	}
	other := `{"action":"opened","pull_request":{"head":{"ref":"feature"}}}`
	if code := post("pull_request", other, sign("s3cret", other)); code != http.StatusOK {
		t.Fatalf("ignored event: %d", code)
	}
	if code := post("pull_request", merged, sign("s3cret", merged)); code != http.StatusAccepted {
		t.Fatalf("good webhook: %d", code)
	}
	waitFor(t, "webhook-triggered pass", func() bool { return n.Load() == 1 })
	waitFor(t, "run recorded", func() bool {
		_, m := get("/metrics")
		return strings.Contains(m, `hl_bot_runs_total{result="success"} 1`)
	})
	_, m := get("/metrics")
	for _, want := range []string{"hl_secrets_overdue 3", `hl_bot_prs_opened_total{kind="rotation"} 1`, `hl_bot_webhooks_total{outcome="rejected"} 2`, "hl_bot_run_duration_seconds_count 1", "hl_bot_lookups_total 0"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func TestShutdownAbandonsStuckPass(t *testing.T) {
	started := make(chan struct{})
	d, _ := New(Options{Schedule: "@daily", ShutdownTimeout: 100 * time.Millisecond, Passes: []Pass{{Name: "stuck", Run: func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}}}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	d.Trigger("test")
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown not bounded")
	}
}

// A captured delivery sent again (same X-Gitea-Delivery) starts no second
// run (issue 15, finding 9: webhook replay).
func TestWebhookReplayIgnored(t *testing.T) {
	var n atomic.Int32
	d, _ := New(Options{Schedule: "@daily", WebhookSecret: "s3cret", Passes: []Pass{
		{Name: "count", Run: func(context.Context) error { n.Add(1); return nil }},
	}})
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	body := `{"action":"closed","pull_request":{"merged":true,"head":{"ref":"hl-bot/podinfo-1.x"}}}`
	post := func(delivery string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/webhook", strings.NewReader(body))
		req.Header.Set("X-Gitea-Event", "pull_request")
		req.Header.Set("X-Gitea-Delivery", delivery)
		req.Header.Set("X-Gitea-Signature", sign("s3cret", body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("d-1"); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d", code)
	}
	waitFor(t, "first run", func() bool { return n.Load() == 1 })
	if code := post("d-1"); code != http.StatusOK {
		t.Fatalf("replayed delivery: %d, want 200 (ignored)", code)
	}
	if got := d.Metrics.webhooks.snapshot()["duplicate"]; got != 1 {
		t.Fatalf("duplicates counted %v, want 1", got)
	}
	time.Sleep(50 * time.Millisecond) // a replay would have started a run by now
	if n.Load() != 1 {
		t.Fatalf("%d runs after a replay, want 1", n.Load())
	}
}

// The lock file is private: not followed through a symlink, refused when
// another user created it first (issue 15, finding 9: /tmp/hl-bot.lock
// could be held by any local user).
func TestLockFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "link.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if unlock, err := fileLock(link); err == nil {
		unlock()
		t.Fatal("a symlinked lock file was followed")
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("the symlink's target was created")
	}
	own := filepath.Join(dir, "sub", "bot.lock")
	unlock, err := fileLock(own)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if fi, _ := os.Stat(own); fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Dir(own)); fi.Mode().Perm() != 0o700 {
		t.Errorf("lock folder mode %v, want 0700", fi.Mode().Perm())
	}
	if os.Geteuid() != 0 {
		t.Fatal("the foreign-owner case needs root to chown (CI runs as root)")
	}
	foreign := filepath.Join(dir, "foreign.lock")
	if err := os.WriteFile(foreign, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if unlock, err := fileLock(foreign); err == nil || !strings.Contains(err.Error(), "another user") {
		if err == nil {
			unlock()
		}
		t.Fatalf("a lock file of another user was taken: %v", err)
	}
}
