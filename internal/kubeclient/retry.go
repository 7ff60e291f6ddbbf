package kubeclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
)

// Attempts and backoff of Retrying: a passing failure (the API server
// restarting, a proxy's 502, a connection cut) is tried again 200 ms,
// 400 ms, 800 ms and 1.6 s later.
const (
	retryAttempts = 5
	retryBackoff  = 200 * time.Millisecond
)

// Retrying returns a copy of cfg whose requests are tried again on a
// passing failure: a connection refused (nothing reached the server), or
// for requests that are safe to repeat (GET, HEAD, server-side apply and
// other PATCHes, PUT, DELETE) also a connection reset or cut short, an
// answer whose body ends early, and 429, 500, 502, 503 and 504. Watches
// and upgraded connections (port-forward, exec) pass through untouched. A POST (a create) is not repeated once sent:
// the server may have done it.
//
// The body of a failed answer goes to log at debug level (nil: nowhere):
// Summarize shows the user one line.
func Retrying(cfg *rest.Config, log *slog.Logger) *rest.Config {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &retryTransport{next: rt, log: log} })
	return c
}

type retryTransport struct {
	next http.RoundTripper
	log  *slog.Logger
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Query().Get("watch") == "true" || req.Header.Get("Upgrade") != "" || (req.Body != nil && req.GetBody == nil) {
		return t.next.RoundTrip(req)
	}
	repeatable := req.Method != http.MethodPost && req.Method != http.MethodConnect
	var resp *http.Response
	var err error
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 && req.GetBody != nil {
			body, berr := req.GetBody()
			if berr != nil {
				return nil, berr
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err = t.next.RoundTrip(r)
		retry := false
		switch {
		case err != nil:
			retry = errors.Is(err, syscall.ECONNREFUSED) || (repeatable && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded))
		case repeatable && passingStatus(resp.StatusCode):
			retry = true
		case repeatable:
			// Read the answer whole, so one cut short is tried again
			// instead of failing the caller's decoding.
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr != nil {
				err, resp, retry = rerr, nil, true
				break
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
		if !retry || attempt == retryAttempts {
			if resp != nil && resp.StatusCode >= 500 && repeatable {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				resp.Body = io.NopCloser(bytes.NewReader(body))
				t.log.Debug("API server error answer", "method", req.Method, "path", req.URL.Path, "status", resp.StatusCode, "body", string(body))
			}
			return resp, err
		}
		t.log.Debug("API server request failed, trying again", "method", req.Method, "path", req.URL.Path, "attempt", attempt, "status", statusOf(resp), "error", err)
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(retryBackoff << (attempt - 1)):
		}
	}
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func passingStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Summarize turns an API server's error answer that carries a body of
// its own (a proxy's error page, a crashed server's stack trace) into one
// line with the status, for a user to read; Kubernetes' own Status
// messages, one line each, stay as they are. Other errors pass through.
func Summarize(err error) error {
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		// client-go's discovery flattens some answers into text:
		// keep the text, not the body it quotes.
		if err != nil && serverBody.MatchString(err.Error()) {
			return &summarized{err: err, msg: serverBody.ReplaceAllString(err.Error(), "an error on the server (--log-level debug shows its body)")}
		}
		return err
	}
	msg := se.ErrStatus.Message
	if !strings.Contains(msg, "\n") && !strings.Contains(msg, `\n`) && len(msg) <= 300 {
		return err
	}
	code := int(se.ErrStatus.Code)
	what := ""
	if d := se.ErrStatus.Details; d != nil && d.Kind != "" {
		what = " (" + d.Kind
		if d.Name != "" {
			what += " " + d.Name
		}
		what += ")"
	}
	return &summarized{err: err, msg: fmt.Sprintf("the API server answered %d %s%s (--log-level debug shows its body)", code, http.StatusText(code), what)}
}

// serverBody is client-go's wording around an answer's body.
var serverBody = regexp.MustCompile(`(?s)an error on the server \(".*"\)`)

// summarized is an error shown as one line that still unwraps to the
// API server's error (apierrors.IsInternalError and friends work).
type summarized struct {
	err error
	msg string
}

func (s *summarized) Error() string { return s.msg }
func (s *summarized) Unwrap() error { return s.err }
