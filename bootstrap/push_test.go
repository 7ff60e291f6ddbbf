package bootstrap

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildTree must produce the tree git itself would write for the same
// folder: entry order, modes, symlinks, .gitignore files at any level,
// .git/info/exclude and empty folders.
func TestBuildTreeMatchesGit(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git is needed to check tree hashes: %v", err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"a.txt":            "a\n",
		"a-b/x":            "x\n",
		"a/b.txt":          "b\n",
		"a/c/d.yaml":       "d: 1\n",
		"ab":               "ab\n",
		".gitignore":       "secret.key\nbuild/\n",
		"secret.key":       "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
		"build/out":        "binary\n",
		"sub/.gitignore":   "*.tmp\n",
		"sub/x.tmp":        "tmp\n",
		"sub/keep.txt":     "keep\n",
		"excluded.log":     "log\n",
		"only-ignored/x.z": "z\n",
	}
	for p, c := range files {
		write(t, dir, p, c, 0o644)
	}
	write(t, dir, "run.sh", "#!/bin/sh\n", 0o755)
	write(t, dir, "only-ignored/.gitignore", "*\n", 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "empty", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	write(t, dir, ".git/info/exclude", "*.log\n", 0o644)
	git("add", "-A")
	want := git("write-tree")

	tr, err := buildTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tr.hash.String() != want {
		t.Errorf("tree %s, git writes %s\n%s", tr.hash, want, git("ls-files", "-s"))
	}
	if n := len(strings.Split(git("ls-files"), "\n")); tr.files != n {
		t.Errorf("%d files, git tracks %d", tr.files, n)
	}
}

func TestBuildTreeRefusesPlaintextKeys(t *testing.T) {
	for name, content := range map[string]string{
		"age identity": "# key\nAGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
		"ssh key":      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
		"pem key":      "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "ok.yaml", "a: 1\n", 0o644)
			write(t, dir, "nested/leak.txt", content, 0o644)
			_, err := buildTree(dir)
			if !errors.Is(err, ErrPlaintextKey) || !strings.Contains(err.Error(), "nested/leak.txt") {
				t.Errorf("err = %v, want ErrPlaintextKey naming the file", err)
			}
		})
	}
}

func write(t *testing.T, dir, p, content string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
}
