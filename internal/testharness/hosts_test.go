package testharness

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestWithHosts: the wrapped command resolves the given names (glibc's
// getent reads /etc/hosts), and the host's /etc/hosts is untouched.
func TestWithHosts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("WithHosts needs root (CI runs the tests as root)")
	}
	before, _ := os.ReadFile("/etc/hosts")
	bin, args, err := WithHosts(t.TempDir(), map[string]string{"gitea-http.gitea.svc": "127.0.0.77"}, "getent", []string{"hosts", "gitea-http.gitea.svc"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "127.0.0.77") {
		t.Errorf("resolved %q, want 127.0.0.77", out)
	}
	if after, _ := os.ReadFile("/etc/hosts"); string(after) != string(before) {
		t.Error("the host's /etc/hosts changed")
	}
	if b, a, _ := WithHosts(t.TempDir(), nil, "true", []string{"x"}); b != "true" || len(a) != 1 {
		t.Errorf("without hosts the command changed: %s %v", b, a)
	}
}

func TestNoProxy(t *testing.T) {
	got := NoProxy([]string{"A=1", "NO_PROXY=localhost"}, map[string]string{"b.svc": "127.0.0.2", "a.svc": "127.0.0.3"})
	want := []string{"A=1", "NO_PROXY=localhost,a.svc,b.svc", "no_proxy=a.svc,b.svc"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := NoProxy([]string{"A=1"}, nil); len(got) != 1 {
		t.Errorf("without hosts: %v", got)
	}
}
