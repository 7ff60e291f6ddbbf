package testharness

import (
	"os"
	"syscall"
)

// SysProcAttr puts a server in a process group of its own (so a kill ends
// the processes it spawns too, and never reaches the test binary's group)
// and has the kernel kill it if the test binary dies first, e.g. on a
// `go test -timeout` panic.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// KillGroup kills a server's process group.
func KillGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}
