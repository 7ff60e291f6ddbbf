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

// The package-wide control plane of the test binary, started on first use.
var shared struct {
	once   sync.Once
	srv    *Server
	err    error
	inMain atomic.Bool
}

// Main runs the package's tests and then stops the shared control plane, if
// one was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testserver.Main(m) }
func Main(m *testing.M) {
	shared.inMain.Store(true)
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testserver: close shared kube-apiserver: %v\n", err)
		}
	}
	os.Exit(code)
}

// ForTest returns the package's shared control plane, starting it on first
// use. Tests share it, so they should use namespaces and cluster-scoped
// names of their own, and never kill or restart it (use New for that). It
// needs Main in TestMain, which stops the servers at the end. It fails the
// test when the control plane cannot start, never skips.
func ForTest(t testing.TB) *Server {
	t.Helper()
	if !shared.inMain.Load() {
		t.Fatal("testserver.ForTest needs `func TestMain(m *testing.M) { testserver.Main(m) }` in this package (or use testserver.New for a per-test server)")
	}
	shared.once.Do(func() {
		// Background, not t.Context(): the servers outlive this test.
		shared.srv, shared.err = Start(context.Background(), Options{})
	})
	if shared.err != nil {
		fatalStart(t, shared.err)
	}
	return shared.srv
}

// New starts a control plane only for t, closed when t ends. Use it when a
// test needs one of its own: custom Options, or killing and restarting the
// API server.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	srv, err := Start(t.Context(), opts)
	if err != nil {
		fatalStart(t, err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close kube test server: %v", err)
		}
	})
	return srv
}

func fatalStart(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinary) {
		t.Fatalf("real kube-apiserver v%s and etcd v%s needed: %v (or point %s and %s at binaries)", KubernetesVersion, EtcdVersion, err, EnvAPIServer, EnvEtcd)
	}
	t.Fatalf("start kube-apiserver v%s: %v", KubernetesVersion, err)
}
