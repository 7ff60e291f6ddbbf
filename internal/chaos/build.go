package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"hl.dev/hl/internal/testharness"
)

// Binary builds the command package pkg (e.g. hl.dev/hl/cmd/hl) once per
// test binary, so the Runner kills a real process; the binary is removed
// when testharness.Main ends. It inherits GOFLAGS and CGO_ENABLED, so it
// shares the build cache with the tests (make exports -trimpath).
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	return testharness.Shared(t, "chaos binary "+pkg, func() (string, func() error, error) {
		dir, err := os.MkdirTemp("", "hl-chaos-")
		if err != nil {
			return "", nil, err
		}
		bin := filepath.Join(dir, filepath.Base(pkg))
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return "", nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
		return bin, func() error { return os.RemoveAll(dir) }, nil
	}, func(t testing.TB, err error) { t.Fatal(err) })
}
