package bootstrap

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"hl.dev/hl/internal/chaos"
)

// hl bootstrap cluster on the full fixture against the real API server
// behind a fault proxy — requests reset, dropped after the server acted,
// delayed, answered 500/502/503 with a Go stack trace as the body, or
// their answers cut short, at a seeded rate (8%) — run twice, and during
// the second run kube-apiserver itself is SIGKILLed after a seeded number
// of requests (1 to 60) and started again a second later (etcd keeps the
// data). hl tries passing
// failures again (kubeclient.Retrying), so each run completes; one that
// does not must stop with a one-line error that shows no stack trace.
// Once the chaos stops, one normal run completes, everything a bootstrap
// makes is there (requireBootstrapped), and a further run changes
// nothing, not one resourceVersion. `make test` runs the fixed seed;
// `make chaos` and CHAOS_RUNS run more.
func TestBootstrapClusterUnderChaos(t *testing.T) {
	chaos.ForEach(t, []uint64{1}, func(t *testing.T, seed uint64) {
		f := newClusterFixture(t, fullConfig, nil)
		proxy, err := chaos.NewProxy(f.kube.URL, chaos.Faults{Seed: seed, Rate: 0.08, MaxDelay: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		if err := proxy.TrustUpstream(f.kube.CAData); err != nil {
			t.Fatal(err)
		}
		chaotic := f.options(t)
		chaotic.Kube = &rest.Config{Host: proxy.URL, BearerToken: f.kube.Token, QPS: -1}
		chaotic.Timeout = 2 * time.Minute
		for i := range 2 {
			// In the second run, kube-apiserver is killed once the run has
			// made a seeded number of requests (after its in-process
			// render, amid its writes) and started again a second later.
			var restarted chan error
			if i == 1 {
				restarted = make(chan error, 1)
				n := 1 + int(chaos.Moment(seed, 0, 60*time.Millisecond)/time.Millisecond)
				from := len(proxy.Events())
				go func() {
					for len(proxy.Events())-from < n {
						time.Sleep(5 * time.Millisecond)
					}
					f.kube.KillAPIServer()
					time.Sleep(time.Second)
					restarted <- f.kube.StartAPIServer(context.Background())
				}()
				t.Logf("run 2: kube-apiserver killed after the run's request %d", n)
			}
			res, err := Cluster(t.Context(), chaotic)
			if restarted != nil {
				if err := <-restarted; err != nil {
					t.Fatalf("kube-apiserver did not start again: %v", err)
				}
			}
			if err != nil {
				msg := err.Error()
				t.Logf("run %d under chaos: %s", i+1, msg)
				if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "PANIC") || strings.Contains(msg, "\n") {
					t.Errorf("run %d: the error is not one line without the server's stack trace:\n%s", i+1, msg)
				}
				continue
			}
			t.Logf("run %d under chaos completed (changed: %v)", i+1, res.Changed)
		}
		t.Logf("faulted requests: %d of %d", len(proxy.Faulted()), len(proxy.Events()))
		if len(proxy.Faulted()) == 0 {
			t.Fatal("the proxy faulted nothing: the chaos did not happen")
		}

		if _, err := Cluster(t.Context(), f.options(t)); err != nil {
			t.Fatalf("the normal run after the chaos: %v", err)
		}
		requireBootstrapped(t, f)
		before := snapshot(t, f)
		res, err := Cluster(t.Context(), f.options(t))
		if err != nil {
			t.Fatalf("a further run: %v", err)
		}
		if res.Changed {
			for _, s := range res.Steps {
				t.Logf("further run: %s %s %s", s.Name, s.Status, s.Detail)
			}
			t.Error("a further run after the chaos reports a change")
		}
		requireSameVersions(t, before, snapshot(t, f))
	})
}

// An API server answering 500 with a stack trace as its body, every time:
// hl tries again, then stops with one line naming the status, never the
// body (which --log-level debug shows).
func TestBootstrapClusterServerErrorIsOneLine(t *testing.T) {
	f := newClusterFixture(t, fullConfig, nil)
	proxy, err := chaos.NewProxy(f.kube.URL, chaos.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	if err := proxy.TrustUpstream(f.kube.CAData); err != nil {
		t.Fatal(err)
	}
	proxy.Rule(func(*http.Request) *chaos.Fault {
		return &chaos.Fault{Kind: chaos.Status, Code: http.StatusInternalServerError}
	})
	o := f.options(t)
	o.Kube = &rest.Config{Host: proxy.URL, BearerToken: f.kube.Token, QPS: -1}
	_, err = Cluster(t.Context(), o)
	if err == nil {
		t.Fatal("bootstrap against an API server answering 500 succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "PANIC") || strings.Contains(msg, "\n") || !strings.Contains(msg, "500") {
		t.Errorf("the error is not one line naming the status:\n%s", msg)
	}
	if n := len(proxy.Events()); n < 5 {
		t.Errorf("%d requests: the first one was not tried again", n)
	}
	t.Logf("error: %s (%d requests)", msg, len(proxy.Events()))
}
