package credfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWarning: owner-only files pass; files other accounts can read are
// reported; group-readable files pass only when the group is the
// process's own (a Kubernetes Secret mounted with fsGroup), never when
// the group may write or the group is another.
func TestWarning(t *testing.T) {
	dir := t.TempDir()
	other := os.Getegid() + 1
	for _, tc := range []struct {
		mode  os.FileMode
		gid   int // -1: the process's group
		warns bool
	}{
		{0o600, -1, false},
		{0o400, -1, false},
		{0o440, -1, false},
		{0o640, -1, false},
		{0o660, -1, true},
		{0o644, -1, true},
		{0o604, -1, true},
		{0o440, other, true},
	} {
		p := filepath.Join(dir, "token")
		os.Remove(p)
		if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if tc.gid >= 0 {
			if err := os.Chown(p, -1, tc.gid); err != nil {
				t.Fatalf("chown to group %d (the tests run as root in CI): %v", tc.gid, err)
			}
		}
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		w := Warning(p)
		if (w != "") != tc.warns {
			t.Errorf("mode %04o group %d: warning %q, want a warning: %v", tc.mode, tc.gid, w, tc.warns)
		}
		if strings.Contains(w, "s3cret") {
			t.Errorf("the warning shows the content: %q", w)
		}
	}
}
