package testserver

import (
	"context"
	"errors"
	"testing"

	"hl.dev/hl/internal/testharness"
)

// Main runs the package's tests and then stops the shared servers started
// (this Gitea, and those of the other harnesses). Call it from TestMain:
//
//	func TestMain(m *testing.M) { testserver.Main(m) }
func Main(m *testing.M) { testharness.Main(m) }

// ForTest returns the package's shared Gitea, starting it on first use.
// Tests share one instance, so they should use unique org, repo and user
// names. It needs Main (this one or testharness.Main) in TestMain, which
// stops the server at the end. It fails the test when the server cannot
// start, never skips.
func ForTest(t testing.TB) *Server {
	t.Helper()
	return testharness.SharedServer(t, "gitea", start(Options{}), fatalStart)
}

// New starts a Gitea only for t, closed when t ends. Use it when a test
// needs an instance of its own, e.g. custom Options.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	return testharness.PerTest(t, "gitea", start(opts), fatalStart)
}

func start(opts Options) func(context.Context) (*Server, error) {
	return func(ctx context.Context) (*Server, error) { return Start(ctx, opts) }
}

func fatalStart(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinary) {
		t.Fatalf("real Gitea %s needed: %v (or point %s at a gitea binary)", Version, err, EnvBinary)
	}
	t.Fatalf("start gitea %s: %v", Version, err)
}
