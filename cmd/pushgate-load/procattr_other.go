//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing here: only Linux can tie a child's life to
// its parent's. Children still end on their own deadline, and the tool
// stops them on a clean exit.
func dieWithParent(*exec.Cmd) {}
