package metal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func osYAML(kernelURL, kernelSum, initrdURL, initrdSum string) string {
	return "name: debian\nversion: \"12\"\nrepo: http://deb.example/debian\nkernel:\n  url: " + kernelURL + "\n  sha256: \"" + kernelSum +
		"\"\ninitrd:\n  url: " + initrdURL + "\n  sha256: \"" + initrdSum + "\"\n"
}

func cacheFiles(t *testing.T, cache string) []string {
	t.Helper()
	var out []string
	filepath.Walk(cache, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestPullVerifiesAndCaches(t *testing.T) {
	kernel, initrd := []byte("generated kernel "+strings.Repeat("k", 5000)), []byte("generated initrd")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/mirror/linux":
			w.Write(kernel)
		case "/mirror/initrd.gz":
			w.Write(initrd)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir, cache := t.TempDir(), filepath.Join(t.TempDir(), "cache")
	// Pinned upstream URLs, fetched through a mirror.
	writeFile(t, filepath.Join(dir, OSFile), osYAML("http://upstream.invalid/d-i/linux", sum(kernel), "http://upstream.invalid/d-i/initrd.gz", sum(initrd)))
	opts := PullOptions{Dir: dir, CacheDir: cache, Mirrors: []Mirror{{From: "http://upstream.invalid/d-i", To: srv.URL + "/mirror"}}}
	res, err := Pull(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Cached || res[0].From != srv.URL+"/mirror/linux" || res[0].Size != int64(len(kernel)) {
		t.Fatalf("results %+v", res)
	}
	p, _ := CachePath(cache, sum(kernel))
	if readFile(t, p) != string(kernel) {
		t.Fatal("kernel not cached under its sha256")
	}
	// Content-addressed: a second pull downloads nothing.
	before := hits.Load()
	res, err = Pull(context.Background(), opts)
	if err != nil || !res[0].Cached || !res[1].Cached || hits.Load() != before {
		t.Fatalf("second pull: %+v %v (%d requests)", res, err, hits.Load()-before)
	}
}

func TestPullChecksumMismatchLeavesNothing(t *testing.T) {
	kernel := []byte("the real kernel")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(kernel) }))
	defer srv.Close()
	dir, cache := t.TempDir(), filepath.Join(t.TempDir(), "cache")
	writeFile(t, filepath.Join(dir, OSFile), osYAML(srv.URL+"/linux", sum([]byte("what was pinned")), srv.URL+"/initrd.gz", sum(kernel)))
	_, err := Pull(context.Background(), PullOptions{Dir: dir, CacheDir: cache})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), sum(kernel)) || !strings.Contains(err.Error(), "nothing was cached") {
		t.Fatalf("err %v", err)
	}
	if files := cacheFiles(t, cache); len(files) != 0 {
		t.Fatalf("left in the cache: %v", files)
	}
}

func TestPullRefusesUnpinned(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, OSFile), osYAML(srv.URL+"/vmlinuz", "", srv.URL+"/initrd.img", ""))
	_, err := Pull(context.Background(), PullOptions{Dir: dir, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no sha256 pinned") || hits.Load() != 0 {
		t.Fatalf("err %v, %d requests", err, hits.Load())
	}
}

// TestPullDebianNetboot pulls the real pinned netboot files of every
// Debian release the catalog offers — 13 (the default) and 12 — from the
// installed debian-installer-<version>-netboot-amd64 packages (file://
// mirror): the catalog's checksums are the packages'.
func TestPullDebianNetboot(t *testing.T) {
	for _, c := range []struct{ config, version string }{
		{"metal/e2e-full", debianDefault},
		{"valid/single-node", "12"},
	} {
		t.Run(c.version, func(t *testing.T) {
			dir := renderedRepo(t, c.config)
			if pin, err := LoadOSPin(dir); err != nil || pin.Ref() != (OSRef{"debian", c.version}) {
				t.Fatalf("%s renders %+v (%v), want Debian %s", c.config, pin, err, c.version)
			}
			cache := t.TempDir()
			res, err := Pull(context.Background(), PullOptions{Dir: dir, CacheDir: cache, Mirrors: []Mirror{debianMirror(t, dir)}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 || !strings.HasPrefix(res[0].From, "file://"+debianNetbootDir(c.version)+"/") || res[1].Size < 1<<20 {
				t.Fatalf("results %+v", res)
			}
		})
	}
}

func TestRewriteAndMAC(t *testing.T) {
	ms := []Mirror{{From: "http://a.example", To: "http://m1"}, {From: "http://a.example/deb/", To: "file:///srv/deb"}}
	for in, want := range map[string]string{
		"http://a.example/x":        "http://m1/x",
		"http://a.example/deb/y":    "file:///srv/deb/y",
		"http://a.example.org/z":    "http://a.example.org/z",
		"https://other.example/d-i": "https://other.example/d-i",
	} {
		if got := Rewrite(in, ms); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"52-54-00-AA-BB-CC": "52:54:00:aa:bb:cc", "5254.00aa.bbcc": "52:54:00:aa:bb:cc"} {
		if got, err := NormaliseMAC(in); err != nil || got != want {
			t.Errorf("%s: %s %v", in, got, err)
		}
	}
	if _, err := NormaliseMAC("52:54:00"); err == nil {
		t.Error("short MAC accepted")
	}
}

// TestPullSizeCap (issue 15, finding 9): a file over the cap is refused,
// whether the server announces its length or streams it chunked, and
// nothing of it stays in the cache. The old code read any size.
func TestPullSizeCap(t *testing.T) {
	big := []byte(strings.Repeat("x", 4096))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.Write(big[:1000]) // flushed without a Content-Length
			w.(http.Flusher).Flush()
			w.Write(big[1000:])
			return
		}
		w.Write(big)
	}))
	defer srv.Close()
	for _, path := range []string{"/sized", "/chunked"} {
		dir, cache := t.TempDir(), filepath.Join(t.TempDir(), "cache")
		writeFile(t, filepath.Join(dir, OSFile), osYAML(srv.URL+path, sum(big), srv.URL+path, sum(big)))
		_, err := Pull(context.Background(), PullOptions{Dir: dir, CacheDir: cache, MaxSize: 4095})
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "nothing was cached") {
			t.Fatalf("%s: err %v", path, err)
		}
		if files := cacheFiles(t, cache); len(files) != 0 {
			t.Fatalf("%s: left in the cache: %v", path, files)
		}
		// At the cap exactly, it is fine.
		if _, err := Pull(context.Background(), PullOptions{Dir: dir, CacheDir: cache, MaxSize: 4096}); err != nil {
			t.Fatalf("%s at the cap: %v", path, err)
		}
	}
}

// TestPullTimeout (issue 15, finding 9): a server that stalls mid-file
// fails the pull once its timeout passes, naming the timeout, and nothing
// of the file stays in the cache. The old code waited forever.
func TestPullTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000")
		w.Write([]byte("the first bytes"))
		w.(http.Flusher).Flush()
		select { // stall until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	dir, cache := t.TempDir(), filepath.Join(t.TempDir(), "cache")
	writeFile(t, filepath.Join(dir, OSFile), osYAML(srv.URL+"/linux", sum([]byte("k")), srv.URL+"/initrd.gz", sum([]byte("i"))))
	_, err := Pull(context.Background(), PullOptions{Dir: dir, CacheDir: cache, Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("err %v", err)
	}
	if files := cacheFiles(t, cache); len(files) != 0 {
		t.Fatalf("left in the cache: %v", files)
	}
}
