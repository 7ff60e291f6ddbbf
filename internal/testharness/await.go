package testharness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildPIDFile is where `make test` (scripts/test.sh) writes the process
// ID of its background build of the test servers, relative to the repo
// root; the file is gone when that build has ended.
const BuildPIDFile = ".cache/harness-build.pid"

// awaitPoll is how often AwaitBuild looks again.
const awaitPoll = 2 * time.Second

var awaitSay sync.Map // paths already announced

// AwaitBuild waits while p does not exist and `make test`'s background
// build of the test servers is still running, so a test that needs a
// server not built yet waits for it instead of failing; it returns at
// once when p exists or no such build runs (then the caller reports the
// missing file, and the build's log says why).
func AwaitBuild(p string) {
	root, err := RepoRoot()
	if err != nil {
		return
	}
	awaitBuild(filepath.Join(root, filepath.FromSlash(BuildPIDFile)), p, awaitPoll)
}

func awaitBuild(pidfile, p string, poll time.Duration) {
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		pid := buildPID(pidfile)
		if pid == 0 {
			return
		}
		if _, said := awaitSay.LoadOrStore(p, true); !said {
			fmt.Fprintf(os.Stderr, "testharness: waiting for the test servers' build (pid %d, log .cache/harness-build.log) to make %s\n", pid, p)
		}
		time.Sleep(poll)
	}
}

// buildPID is the running build's process ID from pidfile, 0 when there
// is none (no file, or its process has ended).
func buildPID(pidfile string) int {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	// Signal 0 checks the process exists; EPERM means it does (another user's).
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return 0
	}
	return pid
}
