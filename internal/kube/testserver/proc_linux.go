package testserver

import (
	"os"
	"syscall"
)

// sysProcAttr puts etcd and kube-apiserver each in a process group of its own
// (so a kill never reaches the test binary's group) and has the kernel kill
// them if the test binary dies first, e.g. on a `go test -timeout` panic.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}
