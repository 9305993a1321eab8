package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill a started process (the gateway under
// test, a worker) when this tool dies, however it dies.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
