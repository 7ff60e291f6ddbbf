package validate

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"

	"hl.dev/hl/internal/chaos"
)

// Chart pulls under chaos: the HTTP chart repository and the OCI registry
// each behind a fault proxy that resets, drops, delays, truncates or
// answers a panic's 500 at a seeded rate (high at first, so that some
// pulls fail even after their retries). After every faulted pull the
// cache holds only whole archives, byte for byte the ones served — a torn
// index or archive never lands — and no error carries a server's stack
// trace. Then, the chaos stopped, one normal pull fetches what is missing
// and an offline run renders all three wrapper charts with no finding.
// `make chaos` runs CHAOS_RUNS seeds.
func TestPullChartsUnderChaos(t *testing.T) {
	chaos.ForEach(t, []uint64{1, 2}, func(t *testing.T, seed uint64) {
		proxies, front := fronts(t, nil)
		httpURL, ociHost, archives := chartServersVia(t, front)
		dir := chartRepo(t, httpURL, ociHost)
		cache := t.TempDir()
		opts := Options{Dir: dir, CacheDir: cache, retryBackoff: 20 * time.Millisecond}

		faulted, failedPulls := 0, 0
		for i, rate := range []float64{0.7, 0.4, 0.2} {
			for j, p := range *proxies {
				p.SetFaults(chaos.Faults{Seed: seed*100 + uint64(i*10+j), Rate: rate, MaxDelay: 200 * time.Millisecond})
			}
			var log bytes.Buffer
			opts.Log = &log
			pulled, err := PullCharts(context.Background(), opts)
			for _, p := range pulled {
				if p.Status == PullFailed {
					failedPulls++
				}
			}
			n := 0
			for _, p := range *proxies {
				n += len(p.Faulted())
			}
			t.Logf("faulted pull %d (rate %.1f, %d requests faulted so far): %d charts, error: %v", i+1, rate, n, len(pulled), err)
			faulted = n
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					if strings.Contains(line, "goroutine ") || strings.Contains(line, "PANIC") || len(line) > 400 {
						t.Errorf("pull %d: an error line carries the server's answer: %.500s", i+1, line)
					}
				}
			}
			if strings.Contains(log.String(), "goroutine ") {
				t.Errorf("pull %d: the log carries a server's stack trace: %.500s", i+1, log.String())
			}
			requireWholeArchives(t, cache, archives)
		}
		if faulted == 0 {
			t.Fatal("no request was faulted: the seed proves nothing")
		}
		t.Logf("%d requests faulted, %d pulls failed after their retries", faulted, failedPulls)

		for _, p := range *proxies {
			p.SetFaults(chaos.Faults{})
		}
		opts.Log = nil
		pulled, err := PullCharts(context.Background(), opts)
		if err != nil {
			t.Fatalf("the normal pull after the chaos: %v", err)
		}
		for _, p := range pulled {
			if p.Status != PullCached && p.Status != PullPulled {
				t.Errorf("%s from %s: %s %s", p.Name, p.Repository, p.Status, p.Error)
			}
		}
		requireWholeArchives(t, cache, archives)
		opts.Offline = true
		r, err := Run(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Findings) != 0 || r.Charts != 3 {
			t.Fatalf("the offline run after the chaos: %d charts\n%s", r.Charts, runText(r))
		}
	})
}

// A repository and a registry that answer every request with a panic's
// 500 (a hundred lines of stack trace): each chart's failure is one line
// naming the chart, the request and the status, after the retries, and
// nothing lands in the cache.
func TestPullServerErrorIsOneLine(t *testing.T) {
	proxies, front := fronts(t, func(*http.Request) *chaos.Fault {
		return &chaos.Fault{Kind: chaos.Status, Code: http.StatusInternalServerError}
	})
	httpURL, ociHost, _ := chartServersVia(t, front)
	dir := chartRepo(t, httpURL, ociHost)
	cache := t.TempDir()
	var log bytes.Buffer
	_, err := PullCharts(context.Background(), Options{Dir: dir, CacheDir: cache, Log: &log, retryBackoff: time.Millisecond})
	if err == nil {
		t.Fatal("the pull succeeded against servers that answer only 500")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 {
		t.Errorf("%d error lines, want one per chart (4):\n%v", len(lines), err)
	}
	for _, line := range lines {
		if strings.Contains(line, "goroutine ") || strings.Contains(line, "PANIC") || len(line) > 300 {
			t.Errorf("an error line carries the server's answer: %.500s", line)
		}
		if !strings.Contains(line, "500") {
			t.Errorf("an error line does not give the status: %s", line)
		}
	}
	t.Logf("what the user reads:\n%v", err)
	if n := strings.Count(log.String(), "retrying"); n < 4*pullRetries {
		t.Errorf("%d retries logged, want at least %d (each chart's first request, %d times):\n%s", n, 4*pullRetries, pullRetries, log.String())
	}
	if strings.Contains(log.String(), "goroutine ") {
		t.Errorf("the log carries the stack trace:\n%.500s", log.String())
	}
	requireWholeArchives(t, cache, nil)
	n := 0
	for _, p := range *proxies {
		n += len(p.Events())
	}
	if n < 4*(1+pullRetries) {
		t.Errorf("the servers saw %d requests, want at least %d", n, 4*(1+pullRetries))
	}
}

// fronts returns a front for chartServersVia that puts a fault proxy
// (with rule, when set) before each server, and the proxies it made.
func fronts(t *testing.T, rule func(*http.Request) *chaos.Fault) (*[]*chaos.Proxy, func(string) string) {
	var proxies []*chaos.Proxy
	return &proxies, func(target string) string {
		p, err := chaos.NewProxy(target, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if rule != nil {
			p.Rule(rule)
		}
		proxies = append(proxies, p)
		return p.URL
	}
}

// requireWholeArchives fails unless every archive in the chart cache is
// one of archives byte for byte and loads as a chart.
func requireWholeArchives(t *testing.T, cache string, archives map[string][]byte) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cache, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := archives[filepath.Base(f)]
		if !ok || !bytes.Equal(b, want) {
			t.Errorf("the cache holds %s (%d bytes), not an archive served whole", f, len(b))
			continue
		}
		if _, err := loader.LoadArchive(bytes.NewReader(b)); err != nil {
			t.Errorf("%s does not load: %v", f, err)
		}
	}
}
