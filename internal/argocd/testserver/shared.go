package testserver

import (
	"errors"
	"testing"
)

// New starts an Argo CD only for t, closed when t ends. When t has failed
// by then, the end of every component's log is logged first: what the
// controller or repo-server said is usually the answer.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	srv, err := Start(t.Context(), opts)
	if err != nil {
		if errors.Is(err, ErrNoBinary) {
			t.Fatalf("real Argo CD %s needed: %v (or point %s at an argocd binary)", Version, err, EnvBinary)
		}
		t.Fatalf("start Argo CD %s: %v", Version, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Argo CD logs (%s):\n%s", srv.Dir, srv.LogTails())
		}
		if err := srv.Close(); err != nil {
			t.Errorf("close Argo CD: %v", err)
		}
	})
	return srv
}
