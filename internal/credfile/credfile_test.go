package credfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const childEnv = "HL_CREDFILE_WARNING_OF"

// TestWarning: owner-only files pass; files other accounts can read are
// reported. A root-owned file readable by the group of the (non-root)
// process reading it — a Kubernetes Secret mounted with fsGroup — passes;
// the same modes on a file the user owns are reported (a primary group
// may be shared), and so is a group that may write. The group cases run
// in a child process as an unprivileged user (the tests run as root).
func TestWarning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestWarning needs root to create files of other owners and run as another user (CI runs the tests as root)")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const user = 65532
	// The test binary's own folder is private to root: the child runs a
	// copy the unprivileged user can execute.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "credfile.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		mode       os.FileMode
		uid, gid   int
		asUser     bool // read by uid/gid 65532 instead of root
		wantReport bool
	}{
		{"owner only", 0o600, 0, 0, false, false},
		{"owner read only", 0o400, 0, 0, false, false},
		{"world readable", 0o644, 0, 0, false, true},
		{"other readable", 0o604, 0, 0, false, true},
		{"group readable, read by root", 0o440, 0, 0, false, true},
		{"mounted Secret (root:fsGroup 0440)", 0o440, 0, user, true, false},
		{"mounted Secret (root:fsGroup 0640)", 0o640, 0, user, true, false},
		{"group may write", 0o460, 0, user, true, true},
		{"the user's own file, group readable", 0o440, user, user, true, true},
		{"another group", 0o440, 0, user + 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, tc.uid, tc.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			var w string
			if tc.asUser {
				cmd := exec.Command(bin, "-test.run=^TestWarningChild$")
				cmd.Env = append(os.Environ(), childEnv+"="+p)
				cmd.Dir = dir
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: user, Gid: user}}
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("child: %v", err)
				}
				w, _, _ = strings.Cut(string(out), "\nPASS")
				w = strings.TrimSpace(strings.TrimPrefix(w, "warning:"))
			} else {
				w = Warning(p)
			}
			if (w != "") != tc.wantReport {
				t.Errorf("warning %q, want one: %v", w, tc.wantReport)
			}
			if strings.Contains(w, "s3cret") {
				t.Errorf("the warning shows the content: %q", w)
			}
		})
	}
}

// TestWarningChild is TestWarning's unprivileged reader: it prints the
// warning for the file the parent names, and does nothing otherwise.
func TestWarningChild(t *testing.T) {
	p := os.Getenv(childEnv)
	if p == "" {
		return
	}
	os.Stdout.WriteString("warning:" + Warning(p) + "\n")
}
