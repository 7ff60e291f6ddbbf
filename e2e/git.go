package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Git runs git in dir with a fixed identity and no user or system
// config; extra environment (GIT_COMMITTER_DATE, ...) is appended.
func Git(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "user.name=hl-e2e", "-c", "user.email=e2e@hl.invalid", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// CommitAll makes dir a git repository (if it is none) and commits all of
// its files on the current branch (main for a new one).
func CommitAll(dir, msg string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		if _, err := Git(dir, nil, "init", "-q", "-b", "main"); err != nil {
			return "", err
		}
	}
	if _, err := Git(dir, nil, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := Git(dir, nil, "commit", "-q", "--allow-empty", "-m", msg); err != nil {
		return "", err
	}
	return Git(dir, nil, "rev-parse", "HEAD")
}

// OpenPath makes dir and its parents up to (not including) the temp
// folder 0755: the image's user must reach a folder bind-mounted into a
// run, as it reaches a volume, and t.TempDir's folders are 0700.
func OpenPath(dir string) error {
	tmp := filepath.Clean(os.TempDir())
	for p := filepath.Clean(dir); p != tmp && strings.HasPrefix(p, tmp+"/"); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}
