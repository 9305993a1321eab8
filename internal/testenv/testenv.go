// Package testenv holds the switch between pushgate's quick test suite
// and its long one.
//
// `go test ./...` runs the quick suite: every test, the storm, soak, chaos
// and failover tests at a size and length that keep the whole suite within
// 3 minutes on a 2-core machine. With PUSHGATE_LONG_TESTS=1 (as .ci/run
// sets it) the long tests run too, and the scaled ones run at full size.
// docs/testing.md lists what the switch adds.
package testenv

import (
	"bytes"
	"flag"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// LongVar is the environment variable that turns the long tests on.
const LongVar = "PUSHGATE_LONG_TESTS"

// Long reports whether the long tests are on.
func Long() bool { return os.Getenv(LongVar) == "1" }

// SkipUnlessLong skips t, saying what it is and how to run it, unless the
// long tests are on.
func SkipUnlessLong(t testing.TB, what string) {
	t.Helper()
	if !Long() {
		t.Skipf("%s: a long test, run with %s=1 (as .ci/run does)", what, LongVar)
	}
}

// Size returns quick in the quick suite and full when the long tests are
// on: the size of a test that asserts the same at either size.
func Size[T any](quick, full T) T {
	if Long() {
		return full
	}
	return quick
}

// Parallel lets a package run up to n of its parallel tests at once
// (-test.parallel, which defaults to the number of CPUs), unless the
// command line sets -parallel. For packages whose parallel tests wait on
// timers, Redis and child processes rather than on the CPU: with two CPUs
// they would otherwise wait out their timelines two at a time. Call it
// from TestMain, before m.Run.
func Parallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}

// FreeAddr returns a loopback address with a port free at the time of the
// call, for a server a test starts in another process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Buffer is a bytes.Buffer that several writers (a logger, a child
// process's output) and the test may share.
type Buffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Program returns the path of the installed program name, which a test
// needs for what it says in why. Without it the test skips, saying so,
// except under CI=true, where it fails: CI must run every test.
func Program(t testing.TB, name, why string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true: %s must be tested (%v)", name, why, err)
	}
	t.Skipf("%s is not installed: skipping %s", name, why)
	return ""
}
