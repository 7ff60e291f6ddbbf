//go:build !linux

package testharness

import (
	"os"
	"syscall"
)

// SysProcAttr is nil where process groups and Pdeathsig do not exist.
func SysProcAttr() *syscall.SysProcAttr { return nil }

// KillGroup kills the process.
func KillGroup(p *os.Process) { _ = p.Kill() }
