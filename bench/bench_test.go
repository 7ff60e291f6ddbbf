package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"hl.dev/hl/bench"
	"hl.dev/hl/bot/extract"
)

func repo(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := bench.WriteRepo(dir, n); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func TestSyntheticRepoHasExactly1000(t *testing.T) {
	deps, problems, err := extract.Scan(context.Background(), repo(t, 1000), extract.Options{})
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	if len(deps) != 1000 {
		t.Fatalf("%d dependencies, want 1000", len(deps))
	}
}

// BenchmarkScan1000 is `hl bot scan` minus the process: walk, read, parse
// and extract a 1000-dependency repo.
func BenchmarkScan1000(b *testing.B) {
	dir := repo(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		deps, _, err := extract.Scan(context.Background(), dir, extract.Options{})
		if err != nil || len(deps) != 1000 {
			b.Fatal(err, len(deps))
		}
	}
}

// TestScanPeakRSS builds hl and bench/cmd/botscan (the same scan, linked
// alone), runs each on the 1000-dependency repo and reads the child's
// peak RSS from its rusage (no GNU time needed). The target, < 64 MiB, is
// asserted on the scan's own footprint: botscan's peak, and hl's peak above
// what `hl version` already takes (the full binary's baseline, ~80-100 MiB
// of mapped code and package init from Kubernetes, Helm, SOPS and cloud
// SDKs, is not the scan's).
func TestScanPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hl binary")
	}
	tmp := t.TempDir()
	build := func(pkg, out string) string {
		t.Helper()
		bin := filepath.Join(tmp, out)
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go build %s: %v", pkg, err)
		}
		return bin
	}
	hl := build("hl.dev/hl/cmd/hl", "hl")
	botscan := build("hl.dev/hl/bench/cmd/botscan", "botscan")
	dir := repo(t, 1000)
	run := func(bin string, args ...string) (int64, []byte) {
		t.Helper()
		var out bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		rss, ok := bench.PeakRSS(cmd.ProcessState)
		if !ok {
			t.Skip("peak RSS is only read on Linux")
		}
		return rss, out.Bytes()
	}
	check := func(out []byte) {
		t.Helper()
		var deps []map[string]any
		if err := json.Unmarshal(out, &deps); err != nil {
			t.Fatal(err)
		}
		if len(deps) != 1000 {
			t.Fatalf("printed %d dependencies, want 1000", len(deps))
		}
		for _, k := range []string{"file", "manager", "datasource", "package", "current", "range"} {
			if _, ok := deps[0][k]; !ok {
				t.Errorf("JSON lacks %q: %v", k, deps[0])
			}
		}
	}
	base, _ := run(hl, "version")
	hlRSS, out := run(hl, "bot", "scan", dir, "-o", "json")
	check(out)
	scanRSS, out := run(botscan, dir)
	check(out)
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	t.Logf("peak RSS: hl bot scan %.1f MiB (hl version %.1f MiB, so the scan adds %.1f MiB); botscan alone %.1f MiB",
		mib(hlRSS), mib(base), mib(hlRSS-base), mib(scanRSS))
	if scanRSS > 64<<20 {
		t.Errorf("botscan peak RSS %.1f MiB, target < 64 MiB", mib(scanRSS))
	}
	if hlRSS-base > 64<<20 {
		t.Errorf("hl bot scan uses %.1f MiB more than hl version, target < 64 MiB", mib(hlRSS-base))
	}
}
