package pr

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/internal/fixture"
	"hl.dev/hl/internal/config"
)

// chartRepo serves podinfo at versions as a Helm chart repository and
// counts the requests per path; the first failFirst requests for
// index.yaml answer 503.
func chartRepo(t *testing.T, failFirst int, versions ...string) (string, func(string) int) {
	t.Helper()
	var mu sync.Mutex
	hits := map[string]int{}
	url := fixture.HelmRepo(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits[r.URL.Path]++
			n := hits[r.URL.Path]
			mu.Unlock()
			if r.URL.Path == "/index.yaml" && n <= failFirst {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}, versions...)
	return url, func(p string) int {
		mu.Lock()
		defer mu.Unlock()
		return hits[p]
	}
}

// Concurrent diffs (one PR body each) fetch the index and every chart
// archive once.
func TestChartRendererFetchesOnceConcurrently(t *testing.T) {
	url, hits := chartRepo(t, 0, "1.0.0", "1.0.1", "2.0.0")
	r := &ChartRenderer{}
	var wg sync.WaitGroup
	diffs := make([]*ChartDiff, 8)
	errs := make([]error, 8)
	for i := range diffs {
		to := []string{"1.0.1", "2.0.0"}[i%2]
		wg.Go(func() {
			diffs[i], errs[i] = r.Diff(context.Background(), url, "podinfo", "1.0.0", to, ChartInput{Values: map[string]any{"replicas": 3}})
		})
	}
	wg.Wait()
	for i, d := range diffs {
		to := []string{"1.0.1", "2.0.0"}[i%2]
		if errs[i] != nil || !strings.Contains(d.Full, `+  version: "`+to+`"`) || !strings.Contains(d.Full, `replicas: "3"`) {
			t.Errorf("diff %d to %s: %v\n%+v", i, to, errs[i], d)
		}
	}
	for _, p := range []string{"/index.yaml", "/podinfo-1.0.0.tgz", "/podinfo-1.0.1.tgz", "/podinfo-2.0.0.tgz"} {
		if n := hits(p); n != 1 {
			t.Errorf("%s fetched %d times, want once", p, n)
		}
	}
}

// A failed fetch is not remembered: the next diff fetches again.
func TestChartRendererRetriesAFailedFetch(t *testing.T) {
	url, hits := chartRepo(t, 1, "1.0.0", "2.0.0")
	r := &ChartRenderer{}
	if _, err := r.Diff(context.Background(), url, "podinfo", "1.0.0", "2.0.0", ChartInput{}); err == nil {
		t.Fatal("diff with the index answering 503 succeeded")
	}
	d, err := r.Diff(context.Background(), url, "podinfo", "1.0.0", "2.0.0", ChartInput{})
	if err != nil || !strings.Contains(d.Full, `+  version: "2.0.0"`) {
		t.Fatalf("second diff: %v %+v", err, d)
	}
	if n := hits("/index.yaml"); n != 2 {
		t.Errorf("index fetched %d times, want 2", n)
	}
}

// The chart of an update is fetched through spec.mirrors, as the lookup
// that found the update: the repository the Chart.yaml names cannot be
// reached, its mirror serves the chart. The wrapper's values for the
// subchart are read from values.yaml beside Chart.yaml.
func TestChartDiffsThroughMirror(t *testing.T) {
	mirror, hits := chartRepo(t, 0, "1.0.0", "1.0.1")
	const upstream = "https://charts.upstream.invalid/podinfo"
	r := &ChartRenderer{Mirrors: config.Mirrors{Charts: []config.Mirror{{From: upstream, To: mirror}}}}
	b := Branch{Name: "hl-bot/podinfo-1.x", Updates: []bot.Update{{
		Dependency: bot.Dependency{File: "apps/web/Chart.yaml", Manager: "helm-chart", Datasource: "helm", Package: "podinfo", RegistryURL: upstream, Current: "1.0.0"},
		NewValue:   "1.0.1", Type: bot.UpdatePatch,
	}}}
	read := func(p string) ([]byte, error) {
		if p != "apps/web/values.yaml" {
			t.Errorf("read %s, want the values beside Chart.yaml", p)
		}
		return []byte("podinfo:\n  replicas: 7\nother: {}\n"), nil
	}
	diffs := r.Diffs(t.Context(), b, r.Values(b, read))
	d := diffs[0]
	if d == nil || !strings.Contains(d.Full, `+  version: "1.0.1"`) || !strings.Contains(d.Full, `replicas: "7"`) {
		t.Fatalf("diff through the mirror: %+v", d)
	}
	if hits("/index.yaml") != 1 {
		t.Errorf("the mirror's index was fetched %d times", hits("/index.yaml"))
	}

	// Without the mirror the upstream name is tried, and the body says
	// why there is no diff.
	d = (&ChartRenderer{}).Diffs(t.Context(), b, r.Values(b, read))[0]
	if d == nil || !strings.HasPrefix(d.Summary, "rendered diff unavailable") {
		t.Fatalf("no mirror: %+v", d)
	}
}
