package merge

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Reference implementations: git merge-file and GNU diff, run on the same
// inputs. Both are required in CI; a missing binary is a test failure,
// not a skip.

const (
	refOurs   = "ours"
	refBase   = "base"
	refTheirs = "theirs"
)

var refOpts = Options{OursLabel: refOurs, BaseLabel: refBase, TheirsLabel: refTheirs}

func writeTemp(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// gitMergeFile returns `git merge-file -p --diff3` output and its
// conflict count.
func gitMergeFile(t testing.TB, base, ours, theirs []byte) ([]byte, int) {
	t.Helper()
	dir := t.TempDir()
	o := writeTemp(t, dir, "o", ours)
	b := writeTemp(t, dir, "b", base)
	th := writeTemp(t, dir, "t", theirs)
	cmd := exec.Command("git", "merge-file", "-p", "--diff3",
		"-L", refOurs, "-L", refBase, "-L", refTheirs, o, b, th)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir)
	cmd.Dir = dir
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee) && ee.ExitCode() > 0 && ee.ExitCode() < 128:
		return out, ee.ExitCode()
	default:
		if ee != nil {
			t.Fatalf("git merge-file: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("git merge-file: %v", err)
		return nil, 0
	}
}

// gnuDiff returns `diff -u` output with the given labels.
func gnuDiff(t testing.TB, a, b []byte, nameA, nameB string, context int) string {
	t.Helper()
	dir := t.TempDir()
	pa := writeTemp(t, dir, "a", a)
	pb := writeTemp(t, dir, "b", b)
	cmd := exec.Command("diff", "-U", strconv.Itoa(context), "--label", nameA, "--label", nameB, pa, pb)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("diff: %v", err)
	}
	return string(out)
}
