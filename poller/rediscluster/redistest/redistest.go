package redistest

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
)

// Server is one redis-server process. Stop and Restart keep its port, so
// clients find it again when it is back.
type Server struct {
	Addr string // host:port

	t    testing.TB
	name string // what the process is, in messages: "redis-server", "sentinel"
	path string
	args []string    // after path; Restart runs the same command line
	tls  *tls.Config // if set, Do speaks TLS
	log  *processLog // every run's output, for failure messages
	mu   sync.Mutex  // protects proc
	proc *process    // nil while stopped
}

// process is one run of a Server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait has returned
}

// Start starts a redis-server without persistence and stops it when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	path := binary(t, "redis-server", "redis-server", "the Redis test")
	port := strconv.Itoa(freePorts(t, 1, false)[0])
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", port), t: t, name: "redis-server", path: path,
		args: []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--maxclients", "10000", "--loglevel", "warning"},
		log: &processLog{},
	}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// startConf starts a server from a configuration file (newConfServer)
// and stops it when the test ends.
func startConf(t testing.TB, name, path string, port int, conf string, extra ...string) *Server {
	t.Helper()
	s := newConfServer(t, name, path, port, conf, extra...)
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// dataConf is the configuration of a data server without persistence.
// A replica's first sync starts at once, not after the default 5 s wait
// for more replicas.
const dataConf = "save \"\"\nappendonly no\nmaxclients 10000\nrepl-diskless-sync-delay 0\n"

// newConfServer returns a stopped server run from a configuration file
// written in a directory of its own, which also holds whatever the server
// writes (nodes.conf, a rewritten sentinel.conf). conf follows port, bind,
// dir and loglevel lines (a later line wins); extra follows the file on
// the command line.
func newConfServer(t testing.TB, name, path string, port int, conf string, extra ...string) *Server {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "redis.conf")
	conf = fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nloglevel notice\n", port, dir) + conf
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t: t, name: name, path: path,
		args: append([]string{file}, extra...), log: &processLog{},
	}
}

// URL is the redis:// URL of the server (rediss:// if it speaks TLS).
func (s *Server) URL() string {
	if s.tls != nil {
		return "rediss://" + s.Addr
	}
	return "redis://" + s.Addr
}

// Restart starts the server again after Stop, on the same port, with the
// same command line. Servers without persistence come back empty.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// start runs the command line and waits until the server answers PING.
func (s *Server) start() error {
	cmd := exec.Command(s.path, s.args...)
	dieWithParent(cmd)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// A fork of the server (an RDB child) may hold the output pipe open
	// after the server is killed; do not wait for it.
	cmd.WaitDelay = time.Second
	s.mu.Lock()
	if s.proc != nil {
		s.mu.Unlock()
		return fmt.Errorf("redistest: %s on %s is running already", s.name, s.Addr)
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("redistest: starting %s: %w", s.name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	s.proc = p
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			s.Stop()
			return fmt.Errorf("redistest: %s on %s exited at start (%v):\n%s", s.name, s.Addr, cmd.ProcessState, s.log)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redistest: %s on %s did not answer: %v\n%s", s.name, s.Addr, err, s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: its data is gone) and waits until it
// has exited.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// running reports whether the server was started and not stopped since.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Do sends one command and returns its reply: a status, bulk string or
// integer as text, an array's elements one per line, "" for a null; an
// error reply is returned as an error. For tests that look at what Redis
// holds.
func (s *Server) Do(args ...string) (string, error) {
	v, err := s.call(args...)
	if err != nil {
		return "", err
	}
	return text(v), nil
}

func (s *Server) ping() error {
	v, err := s.Do("PING")
	if err == nil && v != "PONG" {
		err = fmt.Errorf("PING answered %q", v)
	}
	return err
}

// info returns the fields of INFO section as a map.
func (s *Server) info(section string) (map[string]string, error) {
	v, err := s.Do("INFO", section)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(v, "\r\n") {
		if k, val, ok := strings.Cut(line, ":"); ok {
			m[k] = val
		}
	}
	return m, nil
}

// role returns the first element of ROLE: "master", "slave" or "sentinel".
func (s *Server) role() (string, error) {
	v, err := s.call("ROLE")
	if err != nil {
		return "", err
	}
	if a, ok := v.([]any); ok && len(a) > 0 {
		return text(a[0]), nil
	}
	return "", fmt.Errorf("redistest: ROLE answered %v", v)
}

// binary finds a program, or ends the test (unavailable).
func binary(t testing.TB, name, pkg, what string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		unavailable(t, fmt.Sprintf("%s not installed (apt-get install %s): %v", name, pkg, err), what)
	}
	return path
}

// unavailable ends a test that cannot run here: it skips, except under
// CI=true, where it fails: CI must run every Redis test.
func unavailable(t testing.TB, why, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("redistest: %s; %s must run under CI=true", why, what)
	}
	t.Skipf("redistest: %s; skipping %s", why, what)
}

// freePorts returns n free loopback ports. With bus, port+10000 (a Redis
// Cluster node's bus port) is free as well. All are held until all are
// found, so none is returned twice.
func freePorts(t testing.TB, n int, bus bool) []int {
	t.Helper()
	var ports []int
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 100*n {
			t.Fatalf("redistest: no %d free ports (bus %v) after %d tries", n, bus, tries)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		port := ln.Addr().(*net.TCPAddr).Port
		if bus {
			if port+10000 > 65535 {
				continue
			}
			busLn, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
			if err != nil {
				continue
			}
			held = append(held, busLn)
		}
		ports = append(ports, port)
	}
	return ports
}

// waitFor polls cond until it returns nil and returns when it first did;
// after within, it fails the test with cond's last error.
func waitFor(t testing.TB, within time.Duration, what string, cond func() error) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: no %s within %v: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logOnFailure logs the end of each server's output when the test has
// failed.
func logOnFailure(t testing.TB, servers ...*Server) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, s := range servers {
			t.Logf("redistest: %s on %s, last lines:\n%s", s.name, s.Addr, s.log.tail(40))
		}
	})
}

// processLog keeps what a server wrote, across restarts.
type processLog struct{ testenv.Buffer }

// tail returns the last n lines.
func (l *processLog) tail(n int) string {
	lines := strings.SplitAfter(l.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
