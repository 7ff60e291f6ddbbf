// Package httpx owns how hl talks HTTP to the servers it reads from (the
// bot's datasources, the chart repositories and registries `hl validate`
// pulls from): bounded retries with backoff on 5xx, 429, network errors
// and bodies cut short, a cap on every response body,
// conditional requests (ETag / Last-Modified) answered from a cache on 304,
// and URLs redacted before they reach a log line.
package httpx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults.
const (
	DefaultMaxBytes = 32 << 20
	DefaultRetries  = 3
	DefaultBackoff  = 500 * time.Millisecond
	maxBackoff      = 15 * time.Second
	UserAgent       = "hl-bot (+https://hl.dev)"
)

// ErrTooLarge is returned when a body exceeds its cap.
var ErrTooLarge = errors.New("response body too large")

// Options configure a transport chain.
type Options struct {
	// Base is the innermost transport (default: a clone of
	// http.DefaultTransport with a 30 s response-header timeout).
	Base http.RoundTripper
	// MaxBytes caps each response body (default 32 MiB); negative: no cap.
	MaxBytes int64
	// Retries after the first attempt (default 3); negative: none.
	Retries int
	// Backoff is the first retry delay, doubled each time (default 500 ms).
	Backoff time.Duration
	// Cache answers conditional requests; nil: none.
	Cache *Cache
	// Logger gets retry notices (URLs redacted, never headers).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 30 * time.Second
		o.Base = t
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Transport builds the chain cache → retry → limit → base.
func Transport(o Options) http.RoundTripper {
	o = o.withDefaults()
	var rt http.RoundTripper = &limit{next: o.Base, max: o.MaxBytes}
	rt = &retry{next: rt, retries: o.Retries, backoff: o.Backoff, log: o.Logger}
	if o.Cache != nil {
		rt = &conditional{next: rt, cache: o.Cache}
	}
	return rt
}

// Client is an http.Client over Transport(o) with an overall timeout.
func Client(o Options) *http.Client {
	return &http.Client{Transport: Transport(o), Timeout: 5 * time.Minute}
}

// limit caps bodies and sets the User-Agent.
type limit struct {
	next http.RoundTripper
	max  int64
}

func (l *limit) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", UserAgent)
	}
	resp, err := l.next.RoundTrip(req)
	if err != nil || l.max < 0 {
		return resp, err
	}
	if resp.ContentLength > l.max {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %w (%d bytes, limit %d)", Redact(req.URL.String()), ErrTooLarge, resp.ContentLength, l.max)
	}
	resp.Body = &capped{ReadCloser: resp.Body, left: l.max, url: Redact(req.URL.String()), limit: l.max}
	return resp, nil
}

type capped struct {
	io.ReadCloser
	left, limit int64
	url         string
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more than allowed tells a body at the cap from one over it.
		var one [1]byte
		if n, _ := c.ReadCloser.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%s: %w (limit %d bytes)", c.url, ErrTooLarge, c.limit)
		}
		return c.ReadCloser.Read(p)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

// retry repeats idempotent requests on network errors, 5xx and 429, and
// GETs whose body was cut short.
type retry struct {
	next    http.RoundTripper
	retries int
	backoff time.Duration
	log     *slog.Logger
}

func (r *retry) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return r.next.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		resp, err := r.next.RoundTrip(req)
		retryable := false
		wait := r.delay(attempt)
		switch {
		case err != nil:
			retryable = ctx.Err() == nil && !errors.Is(err, ErrTooLarge) && !permanent(err)
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			retryable = true
			if ra, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && ra > 0 {
				wait = min(time.Duration(ra)*time.Second, maxBackoff)
			}
		case req.Method == http.MethodGet && resp.StatusCode/100 == 2:
			// The body is read here, whole (the cap bounds it), so that
			// one cut short (a connection dropped mid-answer) is retried
			// like a reset instead of reaching the caller as a torn
			// index or archive.
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				resp.Body = io.NopCloser(bytes.NewReader(body))
				resp.ContentLength = int64(len(body))
				return resp, nil
			}
			err = fmt.Errorf("read %s: %w", Redact(req.URL.String()), err)
			resp = nil
			retryable = ctx.Err() == nil && !errors.Is(err, ErrTooLarge)
		}
		if !retryable || attempt >= r.retries {
			return resp, err
		}
		why := ""
		if err != nil {
			why = RedactErr(err).Error()
		} else {
			why = resp.Status
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		r.log.Warn("retrying", "method", req.Method, "url", Redact(req.URL.String()), "reason", why, "attempt", attempt+1, "of", r.retries, "wait", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// permanent reports errors that a retry cannot cure: a plain-HTTP server
// answering a TLS handshake (as when a client first tries https on an
// insecure registry, which go-containerregistry does before falling back
// to http) or a certificate that does not verify.
func permanent(err error) bool {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &rh) || errors.As(err, &cv)
}

func (r *retry) delay(attempt int) time.Duration {
	d := r.backoff << attempt
	if d > maxBackoff || d <= 0 {
		d = maxBackoff
	}
	// Up to 25 % jitter so parallel lookups do not retry in lockstep.
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

// Cache keeps bodies of responses that carried a validator (ETag or
// Last-Modified) so the next request for the same URL (and credentials)
// is conditional and a 304 is answered from here. It is safe for
// concurrent use and meant to outlive one bot run.
type Cache struct {
	// Dir, when set, keeps every entry in a file as well, so the next
	// process (a CronJob's next run, a restarted daemon) revalidates too.
	Dir string

	mu      sync.Mutex
	entries map[string]*entry
	maxSize int64
	size    int64

	// Revalidated counts 304 answers served from the cache.
	Revalidated atomic.Int64
}

type entry struct {
	etag, lastModified string
	header             http.Header
	body               []byte
}

// diskEntry is an entry's file. Response headers are kept but for
// cookies; the key (URL and a hash of the credentials) is not stored.
type diskEntry struct {
	ETag         string      `json:"etag,omitempty"`
	LastModified string      `json:"lastModified,omitempty"`
	Header       http.Header `json:"header,omitempty"`
	Body         []byte      `json:"body"`
}

func (c *Cache) file(k string) string {
	h := sha256.Sum256([]byte(k))
	return filepath.Join(c.Dir, "http-"+hex.EncodeToString(h[:12])+".json")
}

// NewCache returns a cache holding at most maxBytes of bodies (default
// 64 MiB when <= 0); when full, new bodies are not stored.
func NewCache(maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	return &Cache{entries: map[string]*entry{}, maxSize: maxBytes}
}

func cacheKey(req *http.Request) string {
	h := sha256.New()
	// Different credentials may see different answers; the key holds only
	// a hash of them.
	io.WriteString(h, req.Header.Get("Authorization"))
	io.WriteString(h, "\x00"+req.Header.Get("Accept"))
	return req.URL.String() + "#" + hex.EncodeToString(h.Sum(nil)[:8])
}

func (c *Cache) get(k string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok || c.Dir == "" {
		return e
	}
	b, err := os.ReadFile(c.file(k))
	if err != nil {
		return nil
	}
	var d diskEntry
	if json.Unmarshal(b, &d) != nil || (d.ETag == "" && d.LastModified == "") || c.size+int64(len(d.Body)) > c.maxSize {
		return nil
	}
	e := &entry{etag: d.ETag, lastModified: d.LastModified, header: d.Header, body: d.Body}
	c.entries[k] = e
	c.size += int64(len(e.body))
	return e
}

func (c *Cache) put(k string, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[k]; old != nil {
		c.size -= int64(len(old.body))
	}
	if c.size+int64(len(e.body)) > c.maxSize {
		delete(c.entries, k)
		return
	}
	c.entries[k] = e
	c.size += int64(len(e.body))
	if c.Dir == "" {
		return
	}
	h := e.header.Clone()
	h.Del("Set-Cookie")
	b, err := json.Marshal(diskEntry{ETag: e.etag, LastModified: e.lastModified, Header: h, Body: e.body})
	if err != nil || os.MkdirAll(c.Dir, 0o700) != nil {
		return
	}
	// Written whole, then renamed: a run killed mid-write leaves no torn file.
	tmp := c.file(k) + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, c.file(k))
	}
}

type conditional struct {
	next  http.RoundTripper
	cache *Cache
}

// CacheHeader marks responses answered from the cache after a 304.
const CacheHeader = "X-Hl-Cache"

func (c *conditional) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return c.next.RoundTrip(req)
	}
	key := cacheKey(req)
	e := c.cache.get(key)
	if e != nil && req.Header.Get("If-None-Match") == "" && req.Header.Get("If-Modified-Since") == "" {
		req = req.Clone(req.Context())
		if e.etag != "" {
			req.Header.Set("If-None-Match", e.etag)
		}
		if e.lastModified != "" {
			req.Header.Set("If-Modified-Since", e.lastModified)
		}
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotModified && e != nil {
		resp.Body.Close()
		c.cache.Revalidated.Add(1)
		h := e.header.Clone()
		for k, v := range resp.Header { // fresh rate-limit and date headers
			h[k] = v
		}
		h.Set(CacheHeader, "revalidated")
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: h, Body: io.NopCloser(bytes.NewReader(e.body)), ContentLength: int64(len(e.body)), Request: req,
		}, nil
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if resp.StatusCode != http.StatusOK || (etag == "" && lm == "") {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.cache.put(key, &entry{etag: etag, lastModified: lm, header: resp.Header.Clone(), body: body})
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

var secretParams = []string{"token", "access_token", "key", "sig", "signature", "password", "secret", "x-amz-signature", "x-amz-credential"}

// Redact removes credentials from a URL: the userinfo password and the
// values of query parameters that commonly carry secrets.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable url>"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			for _, s := range secretParams {
				if strings.EqualFold(k, s) {
					q.Set(k, "REDACTED")
					changed = true
				}
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// RedactErr rewrites the URL inside a *url.Error.
func RedactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: Redact(ue.URL), Err: ue.Err}
	}
	return err
}

// Get fetches url and returns the body (capped by the transport). Non-2xx
// statuses are errors carrying the status.
func Get(ctx context.Context, c *http.Client, rawURL string, header http.Header) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, RedactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, resp.Header, &StatusError{URL: Redact(rawURL), Code: resp.StatusCode, Status: resp.Status}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", Redact(rawURL), err)
	}
	return b, resp.Header, nil
}

// StatusError is a non-2xx answer.
type StatusError struct {
	URL    string
	Code   int
	Status string
}

func (e *StatusError) Error() string { return fmt.Sprintf("GET %s: %s", e.URL, e.Status) }
