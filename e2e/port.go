package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// HoldPort serialises, across test binaries, the runs that bind a
// rendered host port (pods share the host's network here: the rendered
// bot listens on :8080 in e2e and in e2e/loop, which go test may run at
// the same time). It blocks until no other holder is left and returns the
// release, which t's cleanup also calls.
func HoldPort(t testing.TB, port int) (release func()) {
	t.Helper()
	p := filepath.Join(os.TempDir(), fmt.Sprintf("hl-e2e-port-%d.lock", port))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("port %d lock: %v", port, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("port %d lock: %v", port, err)
	}
	var once sync.Once
	release = func() { once.Do(func() { f.Close() }) }
	t.Cleanup(release)
	return release
}
