package testserver

import (
	"context"
	"errors"
	"testing"

	"hl.dev/hl/internal/testharness"
)

// New starts an Argo CD only for t, closed when t ends. When t has failed
// by then, the end of every component's log is logged first: what the
// controller or repo-server said is usually the answer.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := testharness.PerTest(t, "Argo CD", func(ctx context.Context) (*Server, error) { return Start(ctx, opts) }, fatalStart)
	// Registered after PerTest's close, so it runs first.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Argo CD logs (%s):\n%s", srv.Dir, srv.LogTails())
		}
	})
	return srv
}

func fatalStart(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinary) {
		t.Fatalf("real Argo CD %s needed: %v (or point %s at an argocd binary)", Version, err, EnvBinary)
	}
	t.Fatalf("start Argo CD %s: %v", Version, err)
}
