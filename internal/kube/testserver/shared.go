package testserver

import (
	"context"
	"errors"
	"testing"

	"hl.dev/hl/internal/testharness"
)

// Main runs the package's tests and then stops the shared servers started
// (this control plane, and those of the other harnesses). Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { testserver.Main(m) }
func Main(m *testing.M) { testharness.Main(m) }

// ForTest returns the package's shared control plane, starting it on first
// use. Tests share it, so they should use namespaces and cluster-scoped
// names of their own, and never kill or restart it (use New for that). It
// needs Main (this one or testharness.Main) in TestMain, which stops the
// servers at the end. It fails the test when the control plane cannot
// start, never skips.
func ForTest(t testing.TB) *Server {
	t.Helper()
	return testharness.SharedServer(t, "kube-apiserver", start(Options{}), fatalStart)
}

// New starts a control plane only for t, closed when t ends. Use it when a
// test needs one of its own: custom Options, or killing and restarting the
// API server.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	return testharness.PerTest(t, "kube-apiserver", start(opts), fatalStart)
}

func start(opts Options) func(context.Context) (*Server, error) {
	return func(ctx context.Context) (*Server, error) { return Start(ctx, opts) }
}

func fatalStart(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinary) {
		t.Fatalf("real kube-apiserver v%s and etcd v%s needed: %v (or point %s and %s at binaries)", KubernetesVersion, EtcdVersion, err, EnvAPIServer, EnvEtcd)
	}
	t.Fatalf("start kube-apiserver v%s: %v", KubernetesVersion, err)
}
