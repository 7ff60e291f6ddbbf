package gitretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

func TestTransient(t *testing.T) {
	for err, want := range map[error]bool{
		&githttp.Err{Response: &http.Response{StatusCode: 502}}: true,
		&githttp.Err{Response: &http.Response{StatusCode: 429}}: true,
		&githttp.Err{Response: &http.Response{StatusCode: 400}}: false,
		fmt.Errorf("clone: %w", io.ErrUnexpectedEOF):            true,
		fmt.Errorf("push: %w", syscall.ECONNRESET):              true,
		transport.ErrAuthenticationRequired:                     false,
		transport.ErrAuthorizationFailed:                        false,
		transport.ErrRepositoryNotFound:                         false,
		git.ErrNonFastForwardUpdate:                             false,
		errors.New("remote: pre-receive hook declined"):         false,
	} {
		if got := Transient(err); got != want {
			t.Errorf("Transient(%v) = %v, want %v", err, got, want)
		}
	}
}

// Do gives up after the default attempts and does not retry what cannot
// pass.
func TestDoBounds(t *testing.T) {
	n := 0
	err := Do(context.Background(), func() error { n++; return io.ErrUnexpectedEOF })
	if !errors.Is(err, io.ErrUnexpectedEOF) || n != 4 {
		t.Errorf("transient: %d attempts, %v", n, err)
	}
	n = 0
	err = Do(context.Background(), func() error { n++; return transport.ErrAuthenticationRequired })
	if n != 1 || !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Errorf("permanent: %d attempts, %v", n, err)
	}
}
