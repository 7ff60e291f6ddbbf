package chaos_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hl.dev/hl/internal/chaos"
)

func backend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, strings.Repeat("x", 4096))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestProxyFaults(t *testing.T) {
	tests := []struct {
		kind chaos.Kind
		// what the client sees and whether the server handled it
		clientErr bool
		status    int
		fullBody  bool
		handled   bool
	}{
		{kind: "", status: 200, fullBody: true, handled: true},
		{kind: chaos.Reset, clientErr: true},
		{kind: chaos.Drop, clientErr: true, handled: true},
		{kind: chaos.Delay, status: 200, fullBody: true, handled: true},
		{kind: chaos.Status, status: 500},
		{kind: chaos.Truncate, status: 200, handled: true},
		{kind: chaos.Lost, clientErr: true, handled: true},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			srv, hits := backend(t)
			p, err := chaos.NewProxy(srv.URL, chaos.Faults{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if tc.kind != "" {
				p.Rule(func(*http.Request) *chaos.Fault { return &chaos.Fault{Kind: tc.kind, Delay: 10 * time.Millisecond} })
			}
			c := &http.Client{Transport: &http.Transport{Proxy: nil}}
			resp, err := c.Get(p.URL + "/x")
			if (err != nil) != tc.clientErr {
				t.Fatalf("err = %v, want error %v", err, tc.clientErr)
			}
			if err == nil {
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if full := rerr == nil && len(body) == 4096; full != tc.fullBody {
					t.Errorf("full body %v (%d bytes, %v), want %v", full, len(body), rerr, tc.fullBody)
				}
				if tc.kind == chaos.Status && !strings.Contains(string(body), "goroutine") {
					t.Errorf("5xx body is not a stack trace: %.100s", body)
				}
			}
			if got := hits.Load() == 1; got != tc.handled {
				t.Errorf("server handled it: %v, want %v", got, tc.handled)
			}
			if ev := p.Events(); len(ev) != 1 || ev[0].Fault != tc.kind {
				t.Errorf("events %v", ev)
			}
		})
	}
}

// Cut hands the request to the server at once but holds the answer back
// until Then has run (a Delay after the body was sent), however fast the
// server answers: a client killed by Then never hears it.
func TestProxyCutHoldsTheAnswer(t *testing.T) {
	srv, hits := backend(t)
	p, err := chaos.NewProxy(srv.URL, chaos.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var then atomic.Int64 // when Then ran, in ns since start
	start := time.Now()
	p.Rule(func(*http.Request) *chaos.Fault {
		return &chaos.Fault{Kind: chaos.Cut, Delay: 200 * time.Millisecond, Then: func() { then.Store(int64(time.Since(start))) }}
	})
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Post(p.URL+"/git-receive-pack", "application/octet-stream", strings.NewReader("pack"))
	if err != nil {
		t.Fatal(err)
	}
	answered := time.Since(start)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if hits.Load() != 1 || len(body) != 4096 {
		t.Errorf("server hits %d, body %d bytes: want the request passed on and its answer after Then", hits.Load(), len(body))
	}
	if ran := time.Duration(then.Load()); ran == 0 || answered < ran {
		t.Errorf("the answer came %v after the start, Then ran at %v: the client heard the server before Then", answered, ran)
	}
}

// Lost runs Then after the server handled the request and hangs up: the
// client hears nothing.
func TestProxyLostRunsThenAndHangsUp(t *testing.T) {
	srv, hits := backend(t)
	p, err := chaos.NewProxy(srv.URL, chaos.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var handledAtThen atomic.Int64
	p.Rule(func(*http.Request) *chaos.Fault {
		return &chaos.Fault{Kind: chaos.Lost, Then: func() { handledAtThen.Store(hits.Load()) }}
	})
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	if resp, err := c.Get(p.URL + "/callback"); err == nil {
		resp.Body.Close()
		t.Fatalf("the client heard an answer: %s", resp.Status)
	}
	if handledAtThen.Load() != 1 {
		t.Errorf("Then ran with %d requests handled, want 1 (after the server)", handledAtThen.Load())
	}
}

// The same seed faults the same requests the same way.
func TestProxySeeded(t *testing.T) {
	srv, _ := backend(t)
	run := func(seed uint64) []chaos.Event {
		p, err := chaos.NewProxy(srv.URL, chaos.Faults{Seed: seed, Rate: 0.3, Kinds: []chaos.Kind{chaos.Status, chaos.Reset}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := &http.Client{Transport: &http.Transport{Proxy: nil}}
		for i := range 40 {
			if resp, err := c.Get(fmt.Sprintf("%s/%d", p.URL, i)); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		return p.Events()
	}
	a, b, other := run(7), run(7), run(8)
	// Go's client resends a GET whose reused connection was reset: more
	// than 40 events, the same ones for the same seed.
	if len(a) < 40 || !slices.Equal(a, b) {
		t.Errorf("seed 7 twice differs:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Error("seeds 7 and 8 fault the same requests")
	}
	n := 0
	for _, e := range a {
		if e.Fault != "" {
			n++
		}
	}
	if n == 0 || n == len(a) {
		t.Errorf("%d of %d faulted at rate 0.3", n, len(a))
	}
}

func TestRunner(t *testing.T) {
	r := chaos.Runner{Command: func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, "sh", "-c", "echo started; sleep 30; echo finished")
	}}
	o := r.Kill(t.Context(), 200*time.Millisecond)
	if !o.Killed || o.Err == nil || strings.Contains(o.Output(), "finished") {
		t.Errorf("kill: %v, output %q", o, o.Output())
	}
	quick := chaos.Runner{Command: func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, "sh", "-c", "echo done") }}
	outs := quick.KillThenRun(t.Context(), []time.Duration{10 * time.Second})
	if len(outs) != 2 || outs[0].Killed || outs[1].Err != nil || outs[1].Output() != "done\n" {
		t.Errorf("outcomes %v", outs)
	}
}

func TestMoment(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2500*time.Millisecond
	seen := map[time.Duration]bool{}
	for s := range uint64(20) {
		m := chaos.Moment(s, lo, hi)
		if m < lo || m >= hi || m != chaos.Moment(s, lo, hi) {
			t.Errorf("seed %d: %v", s, m)
		}
		seen[m] = true
	}
	if len(seen) < 15 {
		t.Errorf("20 seeds gave %d moments", len(seen))
	}
}
