package testserver

import (
	"os"
	"syscall"
)

// sysProcAttr puts each component in a process group of its own (so Close
// also ends the git, helm and kustomize processes repo-server spawns, and a
// kill never reaches the test binary's group) and has the kernel kill it if
// the test binary dies first, e.g. on a `go test -timeout` panic.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}
