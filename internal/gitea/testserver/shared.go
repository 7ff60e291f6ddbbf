package testserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// The package-wide server of the test binary, started on first use.
var shared struct {
	once   sync.Once
	srv    *Server
	err    error
	inMain atomic.Bool
}

// Main runs the package's tests and then stops the shared server, if one was
// started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testserver.Main(m) }
func Main(m *testing.M) {
	shared.inMain.Store(true)
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testserver: close shared gitea: %v\n", err)
		}
	}
	os.Exit(code)
}

// ForTest returns the package's shared Gitea, starting it on first use.
// Tests share one instance, so they should use unique org, repo and user
// names. It needs Main in TestMain, which stops the server at the end.
// It fails the test when the server cannot start, never skips.
func ForTest(t testing.TB) *Server {
	t.Helper()
	if !shared.inMain.Load() {
		t.Fatal("testserver.ForTest needs `func TestMain(m *testing.M) { testserver.Main(m) }` in this package (or use testserver.New for a per-test server)")
	}
	shared.once.Do(func() {
		// Background, not t.Context(): the server outlives this test.
		shared.srv, shared.err = Start(context.Background(), Options{})
	})
	if shared.err != nil {
		fatalStart(t, shared.err)
	}
	return shared.srv
}

// New starts a Gitea only for t, closed when t ends. Use it when a test
// needs an instance of its own, e.g. custom Options.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	srv, err := Start(t.Context(), opts)
	if err != nil {
		fatalStart(t, err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close gitea: %v", err)
		}
	})
	return srv
}

func fatalStart(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinary) {
		t.Fatalf("real Gitea %s needed: %v (or point %s at a gitea binary)", Version, err, EnvBinary)
	}
	t.Fatalf("start gitea %s: %v", Version, err)
}
