// Package retry owns the bot's bounded retries against forges: an
// http.RoundTripper that retries 5xx answers, 429 and transport errors with
// exponential backoff, and never logs request headers (tokens).
package retry

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"
)

// Transport retries idempotent requests, and non-idempotent ones only when
// the request never reached the server (connection refused).
type Transport struct {
	Base     http.RoundTripper
	Attempts int           // total attempts (default 4)
	Backoff  time.Duration // first wait, doubled each time (default 200ms)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
		// PATCH here only edits title/body/state to fixed values.
		return true
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	attempts := t.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	backoff := t.Backoff
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
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
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func isRefused(err error) bool {
	return strings.Contains(err.Error(), "connection refused")
}
