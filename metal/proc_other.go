//go:build !linux

package metal

import "os/exec"

func setChildAttrs(*exec.Cmd) {}
