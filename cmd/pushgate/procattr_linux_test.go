package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill a started process when the test
// process dies without its cleanups (a panic, a timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
