package metal

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel kill a child (dnsmasq) if hl dies first.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
