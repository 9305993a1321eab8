package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// dieWithParent has the kernel kill a started process when the test
// process dies without its cleanups (a panic, a timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processRunning reports whether the child pid still runs: it exists and
// is not a zombie, which has exited (its files closed) and waits to be
// reaped. known is false where that cannot be told.
func processRunning(pid int) (running, known bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false, true // reaped
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false, false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X', true
}
