package httpx

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryOn5xxThenSuccess(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var logs bytes.Buffer
	c := Client(Options{Retries: 3, Backoff: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	body, _, err := Get(context.Background(), c, srv.URL+"/x?token=s3cr3t", nil)
	if err != nil || string(body) != "ok" {
		t.Fatalf("body %q err %v", body, err)
	}
	if n.Load() != 3 {
		t.Errorf("%d attempts, want 3", n.Load())
	}
	if !strings.Contains(logs.String(), "retrying") || strings.Contains(logs.String(), "s3cr3t") {
		t.Errorf("logs: %s", logs.String())
	}
}

func TestRetriesAreBounded(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	c := Client(Options{Retries: 2, Backoff: time.Millisecond})
	_, _, err := Get(context.Background(), c, srv.URL, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadGateway {
		t.Fatalf("err = %v", err)
	}
	if n.Load() != 3 {
		t.Errorf("%d attempts, want 1 + 2 retries", n.Load())
	}
}

func TestRetryOnTimeout(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond) // past the header timeout
		}
		w.Write([]byte("late but fine"))
	}))
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = 100 * time.Millisecond
	c := Client(Options{Base: base, Retries: 2, Backoff: time.Millisecond})
	body, _, err := Get(context.Background(), c, srv.URL, nil)
	if err != nil || string(body) != "late but fine" {
		t.Fatalf("body %q err %v", body, err)
	}
	if n.Load() != 2 {
		t.Errorf("%d attempts, want 2", n.Load())
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	if _, _, err := Get(context.Background(), Client(Options{Backoff: time.Millisecond}), srv.URL, nil); err == nil {
		t.Fatal("want an error")
	}
	if n.Load() != 1 {
		t.Errorf("%d attempts", n.Load())
	}
}

// A body cut short (the connection closed before Content-Length bytes)
// is retried like a reset: the caller gets the whole body or, once the
// retries are spent, an error that says so, never half an index.
func TestRetryOnBodyCutShort(t *testing.T) {
	var n, cut atomic.Int32
	cut.Store(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := strings.Repeat("entry\n", 100)
		w.Header().Set("Content-Length", "600")
		if n.Add(1) <= cut.Load() {
			w.Write([]byte(body[:250]))
			w.(http.Flusher).Flush()
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	c := Client(Options{Retries: 2, Backoff: time.Millisecond})
	body, _, err := Get(context.Background(), c, srv.URL, nil)
	if err != nil || len(body) != 600 {
		t.Fatalf("%d bytes, err %v", len(body), err)
	}
	if n.Load() != 2 {
		t.Errorf("%d attempts, want 2", n.Load())
	}
	n.Store(0)
	cut.Store(100)
	body, _, err = Get(context.Background(), c, srv.URL, nil)
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") || body != nil {
		t.Fatalf("always cut: %d bytes, err %v", len(body), err)
	}
	if n.Load() != 3 {
		t.Errorf("always cut: %d attempts, want 1 + 2 retries", n.Load())
	}
}

func TestBodyCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		w.Write(bytes.Repeat([]byte("x"), 2000))
	}))
	defer srv.Close()
	c := Client(Options{MaxBytes: 1000, Backoff: time.Millisecond})
	for _, p := range []string{"/sized", "/chunked"} {
		_, _, err := Get(context.Background(), c, srv.URL+p, nil)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err = %v, want ErrTooLarge", p, err)
		}
	}
	exact := Client(Options{MaxBytes: 2000})
	if b, _, err := Get(context.Background(), exact, srv.URL+"/chunked", nil); err != nil || len(b) != 2000 {
		t.Errorf("a body at the cap: %d bytes, %v", len(b), err)
	}
}

func TestConditionalCache(t *testing.T) {
	var full, notModified atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Write([]byte("payload"))
	}))
	defer srv.Close()
	cache := NewCache(0)
	c := Client(Options{Cache: cache})
	for i := 0; i < 3; i++ {
		b, h, err := Get(context.Background(), c, srv.URL, nil)
		if err != nil || string(b) != "payload" {
			t.Fatalf("run %d: %q %v", i, b, err)
		}
		if i > 0 && h.Get(CacheHeader) != "revalidated" {
			t.Errorf("run %d not served from cache", i)
		}
	}
	if full.Load() != 1 || notModified.Load() != 2 || cache.Revalidated.Load() != 2 {
		t.Errorf("full=%d 304=%d revalidated=%d", full.Load(), notModified.Load(), cache.Revalidated.Load())
	}
	// Other credentials, other cache entry.
	if _, _, err := Get(context.Background(), c, srv.URL, http.Header{"Authorization": {"Bearer other"}}); err != nil {
		t.Fatal(err)
	}
	if full.Load() != 2 {
		t.Errorf("credentials did not key the cache")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@example.org/x?token=abc&page=2": "https://user:REDACTED@example.org/x?page=2&token=REDACTED",
		"https://example.org/x?access_token=abc":         "https://example.org/x?access_token=REDACTED",
		"https://example.org/x?page=2":                   "https://example.org/x?page=2",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%s) = %s, want %s", in, got, want)
		}
	}
}

// https to a plain-HTTP server (go-containerregistry's first ping of an
// insecure registry) fails at once: a retry would only delay its fallback
// to http.
func TestNoRetryOnHTTPSToPlainHTTP(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	defer srv.Close()
	var logs bytes.Buffer
	c := Client(Options{Retries: 3, Backoff: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	start := time.Now()
	_, _, err := Get(context.Background(), c, strings.Replace(srv.URL, "http://", "https://", 1), nil)
	if err == nil {
		t.Fatal("https to a plain-HTTP server succeeded")
	}
	if d := time.Since(start); d > 500*time.Millisecond || strings.Contains(logs.String(), "retrying") {
		t.Errorf("retried (%v): %s", d, logs.String())
	}
}
