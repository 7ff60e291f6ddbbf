package testserver

import (
	"os"
	"syscall"
)

// sysProcAttr puts gitea in its own process group (so Close also ends the git
// processes it spawns) and has the kernel kill it if the test binary dies
// first, e.g. on a `go test -timeout` panic.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}
