// Package schedule owns the bot daemon (`hl bot serve`): it runs the bot's
// passes (upgrades, secret rotation) on the cron schedule of hl.yaml, never
// two at once (an in-process lock plus flock(2) on a lock file, which the
// kernel releases when the process dies), and serves /healthz, /metrics
// (Prometheus text format) and a Gitea webhook that triggers a run when a
// bot PR is merged or closed or the dashboard issue is edited.
package schedule

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"hl.dev/hl/bot/engine"
)

// ErrBusy is returned when a run is refused because another one holds the
// lock.
var ErrBusy = errors.New("a bot run is already in progress")

// Pass is one unit of bot work, e.g. the upgrade or the rotation pass.
type Pass struct {
	Name string
	Run  func(ctx context.Context) error
}

// Options configure the daemon.
type Options struct {
	// Schedule is a cron expression (5 fields, or a descriptor such as
	// @daily or @every 1h); with Seconds, 6 fields.
	Schedule string
	Seconds  bool
	// Timezone (IANA) the schedule is read in; "" is UTC.
	Timezone string
	Passes   []Pass
	// LockFile serialises runs across processes ("" = in-process only).
	LockFile string
	// Listen is the HTTP address ("" = no HTTP server).
	Listen string
	// WebhookSecret verifies X-Gitea-Signature; "" disables /webhook.
	WebhookSecret string
	// BotLogin is the forge account the bot acts as: its own edits (the
	// dashboard it rewrites every run) trigger nothing.
	BotLogin string
	// ShutdownTimeout bounds how long a running pass may take to finish
	// after shutdown starts before it is cancelled (default 30s).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Daemon runs passes on a schedule and on demand.
type Daemon struct {
	o       Options
	sched   cron.Schedule
	log     *slog.Logger
	Metrics *Metrics

	deliveries recent

	mu      sync.Mutex
	running bool
	pending bool // a trigger arrived during a run: run once more after it
	runCtx  context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New validates the options.
func New(o Options) (*Daemon, error) {
	loc := time.UTC
	if o.Timezone != "" {
		var err error
		if loc, err = time.LoadLocation(o.Timezone); err != nil {
			return nil, fmt.Errorf("timezone: %w", err)
		}
	}
	fields := cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor
	if o.Seconds {
		fields |= cron.Second
	}
	sched, err := cron.NewParser(fields).Parse(o.Schedule)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", o.Schedule, err)
	}
	if s, ok := sched.(*cron.SpecSchedule); ok {
		s.Location = loc
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{o: o, sched: sched, log: o.Logger, Metrics: NewMetrics()}
	d.runCtx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Next is the next scheduled run after t.
func (d *Daemon) Next(t time.Time) time.Time { return d.sched.Next(t) }

// RunOnce runs every pass now, in order, unless a run is in progress (in
// this process or, through the lock file, another): then ErrBusy. A failing
// pass does not stop the next one; the errors are joined.
func (d *Daemon) RunOnce(ctx context.Context, reason string) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		d.Metrics.run("refused", 0)
		d.log.Warn("run refused: another run is in progress", "reason", reason)
		return ErrBusy
	}
	d.running = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running = false
		d.mu.Unlock()
	}()
	if d.o.LockFile != "" {
		unlock, err := fileLock(d.o.LockFile)
		if err != nil {
			d.Metrics.run("refused", 0)
			d.log.Warn("run refused", "reason", reason, "err", err)
			return err
		}
		defer unlock()
	}
	start := time.Now()
	d.log.Info("run started", "reason", reason)
	var errs []error
	for _, p := range d.o.Passes {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		ps := time.Now()
		if err := p.Run(ctx); err != nil {
			d.Metrics.errors.add(p.Name, 1)
			d.log.Error("pass failed", "pass", p.Name, "err", err, "duration", time.Since(ps))
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
			continue
		}
		d.log.Info("pass done", "pass", p.Name, "duration", time.Since(ps))
	}
	err := errors.Join(errs...)
	result := "success"
	if err != nil {
		result = "error"
	}
	d.Metrics.run(result, time.Since(start))
	d.log.Info("run finished", "reason", reason, "result", result, "duration", time.Since(start))
	return err
}

// Trigger starts a run in the background (webhook, schedule). When a run is
// in progress it is not started twice: one more run follows the current one.
func (d *Daemon) Trigger(reason string) {
	d.mu.Lock()
	if d.runCtx.Err() != nil {
		d.mu.Unlock()
		return
	}
	if d.running {
		d.pending = true
		d.mu.Unlock()
		d.log.Info("run in progress: another run will follow it", "reason", reason)
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		for {
			_ = d.RunOnce(d.runCtx, reason)
			d.mu.Lock()
			again := d.pending && d.runCtx.Err() == nil
			d.pending = false
			d.mu.Unlock()
			if !again {
				return
			}
			reason = "pending trigger"
		}
	}()
}

// Serve runs the schedule and the HTTP server until ctx is cancelled, then
// shuts down: no new runs, a running pass gets ShutdownTimeout to finish,
// then its context is cancelled and it gets a short bounded wait more.
func (d *Daemon) Serve(ctx context.Context) error {
	var srv *http.Server
	srvErr := make(chan error, 1)
	if d.o.Listen != "" {
		ln, err := net.Listen("tcp", d.o.Listen)
		if err != nil {
			return err
		}
		d.log.Info("listening", "addr", ln.Addr().String())
		// A slow client cannot hold a connection (and a goroutine) open:
		// webhook bodies are small and come from the forge.
		srv = &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		go func() { srvErr <- srv.Serve(ln) }()
	}
	d.log.Info("schedule", "cron", d.o.Schedule, "next", d.Next(time.Now()))
	timer := time.NewTimer(time.Until(d.Next(time.Now())))
	defer timer.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-srvErr:
			d.shutdown()
			return err
		case <-timer.C:
			d.Trigger("schedule")
			timer.Reset(time.Until(d.Next(time.Now())))
		}
	}
	d.log.Info("shutting down")
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	return d.shutdown()
}

func (d *Daemon) shutdown() error {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		d.log.Info("stopped cleanly")
		return nil
	case <-time.After(d.o.ShutdownTimeout):
	}
	d.log.Warn("run did not finish in time: cancelling it")
	d.cancel()
	select {
	case <-done:
		d.log.Info("stopped: run abandoned")
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("a pass ignored cancellation; exiting anyway")
	}
}

// DefaultLockFile is a lock file in a folder of this user only:
// $XDG_RUNTIME_DIR/hl/bot.lock, else the user cache folder's hl/bot.lock.
// The folder is created 0700 when the lock is first taken.
func DefaultLockFile() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "hl", "bot.lock")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "hl", "bot.lock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("hl-bot-%d", os.Geteuid()), "bot.lock")
}

// recent remembers the last webhook delivery ids (a bounded set: the
// oldest is forgotten first).
type recent struct {
	mu    sync.Mutex
	seen  map[string]bool
	order []string
}

const maxDeliveries = 4096

// first records id and reports whether it was new.
func (r *recent) first(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[id] {
		return false
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if len(r.order) == maxDeliveries {
		delete(r.seen, r.order[0])
		r.order = r.order[1:]
	}
	r.seen[id] = true
	r.order = append(r.order, id)
	return true
}

// Handler serves /healthz, /metrics and /webhook.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		d.Metrics.WriteTo(w)
	})
	mux.HandleFunc("POST /webhook", d.webhook)
	return mux
}

// VerifySignature checks a Gitea X-Gitea-Signature: hex HMAC-SHA256 of the
// body with the webhook secret.
func VerifySignature(secret string, body []byte, sig string) bool {
	want, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil || secret == "" {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(m.Sum(nil), want)
}

func (d *Daemon) webhook(w http.ResponseWriter, r *http.Request) {
	if d.o.WebhookSecret == "" {
		http.Error(w, "webhook disabled", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 5<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	if !VerifySignature(d.o.WebhookSecret, body, r.Header.Get("X-Gitea-Signature")) {
		d.Metrics.webhooks.add("rejected", 1)
		d.log.Warn("webhook rejected: bad signature", "remote", r.RemoteAddr)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	// The signature covers the body only, so a captured delivery could be
	// sent again: each delivery id counts once.
	if id := r.Header.Get("X-Gitea-Delivery"); id != "" && !d.deliveries.first(id) {
		d.Metrics.webhooks.add("duplicate", 1)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "duplicate delivery\n")
		return
	}
	event := r.Header.Get("X-Gitea-Event")
	var p struct {
		Action      string `json:"action"`
		PullRequest *struct {
			Merged bool `json:"merged"`
			Head   struct {
				// Label is the head branch; Ref is refs/pull/N/head
				// once the branch is gone (deleted on merge).
				Label string `json:"label"`
				Ref   string `json:"ref"`
			} `json:"head"`
		} `json:"pull_request"`
		Issue *struct {
			Body string `json:"body"`
		} `json:"issue"`
		Sender struct {
			Login string `json:"login"`
		} `json:"sender"`
	}
	_ = json.Unmarshal(body, &p)
	trigger := false
	switch event {
	case "pull_request":
		// A bot PR merged or closed: upgrade and rotation branches alike.
		trigger = p.Action == "closed" && p.PullRequest != nil &&
			(engine.IsBotBranch(p.PullRequest.Head.Label) || engine.IsBotBranch(p.PullRequest.Head.Ref))
	case "issues":
		// A human ticked a checkbox of the dependency dashboard; the bot's
		// own rewrite of it must not start the next run.
		trigger = p.Action == "edited" && p.Issue != nil && strings.Contains(p.Issue.Body, engine.DashboardMarker) &&
			(d.o.BotLogin == "" || !strings.EqualFold(p.Sender.Login, d.o.BotLogin))
	}
	if !trigger {
		d.Metrics.webhooks.add("ignored", 1)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ignored\n")
		return
	}
	d.Metrics.webhooks.add("triggered", 1)
	d.log.Info("webhook: triggering a run", "event", event, "action", p.Action)
	d.Trigger("webhook " + event)
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "triggered\n")
}
