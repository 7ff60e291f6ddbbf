// Package gitretry retries git operations over HTTP (clone, fetch, push)
// through the failures a forge shows while it restarts or is overloaded:
// a 5xx or 429 answer, a connection refused, reset or cut short. Errors
// that a retry cannot fix — authentication, a missing repository, a
// rejected ref update — are returned at once.
//
// Every operation hl retries is idempotent: fetches, and pushes of fixed
// commits (a force push of the same hash twice leaves the same ref).
package gitretry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"hl.dev/hl/internal/forgehttp"
)

// Do runs op until it succeeds, fails for good, or forgehttp's default
// number of attempts is spent, waiting forgehttp's backoff (doubled each
// time) in between. It returns op's last error.
func Do(ctx context.Context, op func() error) error {
	backoff := forgehttp.DefaultBackoff
	for i := 1; ; i++ {
		err := op()
		if err == nil || !Transient(err) || i >= forgehttp.DefaultAttempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// Transient reports whether a git transport error may pass on its own.
func Transient(err error) bool {
	var he *githttp.Err
	if errors.As(err, &he) && he.Response != nil {
		c := he.Response.StatusCode
		return c >= 500 || c == http.StatusTooManyRequests
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// go-git flattens some transport errors into text.
	msg := err.Error()
	for _, s := range []string{"connection reset", "connection refused", "broken pipe", "unexpected EOF", "status code: 50", "EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
