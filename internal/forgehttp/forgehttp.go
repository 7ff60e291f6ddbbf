// Package forgehttp owns how hl speaks HTTP to forges (Gitea, GitHub):
// bounded retries of transient failures (5xx, 429, a reset or refused
// connection) with exponential backoff, and errors a user can read: a
// server's error answer reaches the caller as one line naming the request
// and the status, while its body (a Gitea panic is a hundred lines of stack
// trace) goes to the debug log only. Request headers (tokens) are never
// logged.
//
// It is a leaf helper: hl bootstrap gitea (bootstrap) and the bot's forge
// clients (bot/forge/gitea, bot/forge/github) share it.
package forgehttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Default retry bounds: four attempts wait 0.2+0.4+0.8 s in all.
const (
	DefaultAttempts = 4
	DefaultBackoff  = 200 * time.Millisecond
)

// maxBody bounds how much of an error answer is read (and logged).
const maxBody = 64 << 10

// maxMessage is the longest server message passed on as is.
const maxMessage = 300

// Transport retries idempotent requests, and non-idempotent ones only when
// the request never reached the server (connection refused): a create that
// Gitea did but whose answer was lost must not be sent twice.
type Transport struct {
	Base     http.RoundTripper
	Attempts int           // total attempts (default DefaultAttempts; 1: no retries)
	Backoff  time.Duration // first wait, doubled each time (default DefaultBackoff)
	// Logger receives the bodies of error answers at debug level
	// (default slog.Default()).
	Logger *slog.Logger
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
		// PATCH here only edits fields to fixed values (titles, bodies,
		// states, repository settings).
		return true
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	attempts := t.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	backoff := t.Backoff
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	for i := 1; ; i++ {
		r := req.Clone(req.Context())
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := t.base().RoundTrip(r)
		retry := false
		switch {
		case err != nil:
			retry = idempotent(req.Method) || isRefused(err)
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			retry = idempotent(req.Method)
		}
		if !retry || i >= attempts || req.Context().Err() != nil {
			if err == nil && resp.StatusCode >= 400 && req.Method != http.MethodHead {
				t.summarize(req, resp, i)
			}
			return resp, err
		}
		if resp != nil {
			t.logger().Debug("forge request failed, retrying", "method", req.Method, "path", req.URL.Path, "status", resp.StatusCode, "attempt", i)
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
			resp.Body.Close()
		} else {
			t.logger().Debug("forge request failed, retrying", "method", req.Method, "path", req.URL.Path, "error", err.Error(), "attempt", i)
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// isRefused: the request never reached a server.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused")
}

// summarize keeps a short single-line JSON message of a client error (the
// SDKs show it: "repository already exists") and replaces anything else —
// every server error, an HTML page, a stack trace — by a JSON message of
// one line naming the request (with the server's message when that is one
// short line); the original body goes to the debug log.
func (t *Transport) summarize(req *http.Request, resp *http.Response, attempts int) {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	short, ok := shortMessage(data)
	if resp.StatusCode < 500 && ok {
		resp.Body = io.NopCloser(bytes.NewReader(data))
		return
	}
	t.logger().Debug("forge answered with an error", "method", req.Method, "path", req.URL.Path,
		"status", resp.StatusCode, "attempts", attempts, "body", string(data))
	out, _ := json.Marshal(map[string]string{"message": Summary(req.Method, req.URL.Path, resp.StatusCode, attempts, short)})
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header = resp.Header.Clone()
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
}

// Summary is the one line an error answer becomes: the request, the
// status, the server's own short message if any, and where the body went.
func Summary(method, path string, status, attempts int, message string) string {
	s := fmt.Sprintf("%s %s: HTTP %d %s", method, path, status, http.StatusText(status))
	if attempts > 1 {
		s += fmt.Sprintf(" after %d attempts", attempts)
	}
	if message != "" {
		s += ": " + message
	}
	return s + " (the full answer is in the debug log: --log-level debug)"
}

// shortMessage returns the message of a JSON object whose message is one
// short line.
func shortMessage(data []byte) (string, bool) {
	var m struct {
		Message *string `json:"message"`
	}
	if json.Unmarshal(data, &m) != nil || m.Message == nil ||
		len(*m.Message) > maxMessage || strings.ContainsAny(*m.Message, "\r\n") {
		return "", false
	}
	return *m.Message, true
}
