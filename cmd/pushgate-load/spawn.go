package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a pushgate process this tool started.
type server struct {
	Gateway, Sim string // base URLs
	cmd          *exec.Cmd
	logs         *tail
	exited       chan struct{} // closed when the process has exited
}

// spawnOptions is what spawnServer needs from the run's config.
type spawnOptions struct {
	bin          string // pushgate binary; empty builds ./cmd/pushgate
	tmpDir       string // where the build goes
	interval     time.Duration
	perInterview int
	extraArgs    string
}

// spawnServer builds pushgate if needed, starts it on free loopback ports
// with every per-client and session limit off (all load comes from one
// host), and waits until /healthz answers.
func spawnServer(ctx context.Context, o spawnOptions) (*server, error) {
	bin := o.bin
	if bin == "" {
		var err error
		if bin, err = buildPushgate(ctx, o.tmpDir); err != nil {
			return nil, err
		}
	}
	gw, err := freePort()
	if err != nil {
		return nil, err
	}
	sim, err := freePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	args := []string{
		"-addr", gw, "-sim-addr", sim, "-poll-interval", o.interval.String(),
		"-sessions-per-minute", "-1", "-max-sessions-per-minute", "-1", "-max-conns-per-client", "-1", "-max-streams-per-client", "-1",
		"-max-streams-per-interview", strconv.Itoa(max(o.perInterview, 16)),
		"-max-streams", "-1", "-log-level", "warn", "-secret", hex.EncodeToString(secret),
	}
	args = append(args, strings.Fields(o.extraArgs)...)
	s := &server{Gateway: "http://" + gw, Sim: "http://" + sim, logs: &tail{max: 16 << 10}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	dieWithParent(s.cmd) // never outlive this tool
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting pushgate: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitHealthy(ctx, 30*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// buildPushgate runs go build for the module this tool is run in.
func buildPushgate(ctx context.Context, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("-spawn needs the go command on PATH to build pushgate, or -pushgate-bin")
	}
	out := filepath.Join(dir, "pushgate")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/pushgate/pushgate/cmd/pushgate")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building pushgate (run inside the module, or pass -pushgate-bin): %w\n%s", err, msg)
	}
	return out, nil
}

// freePort picks a free loopback port. Another process could take it before
// pushgate binds it; then pushgate fails to start and says so.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *server) waitHealthy(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	for {
		if resp, err := c.Get(s.Gateway + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pushgate exited at start:\n%s", s.logs)
		case <-ctx.Done():
			return fmt.Errorf("pushgate did not answer /healthz within %v:\n%s", limit, s.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Pid is the server's process id.
func (s *server) Pid() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM, and SIGKILL if the server is still there after its
// shutdown grace (10 s by default) and a little more.
func (s *server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(12 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// tail keeps the last max bytes written to it: the server's log, shown when
// it fails.
type tail struct {
	mu  sync.Mutex // protects buf
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// procRSS reads VmRSS of a process ("self" or a pid) from /proc, in bytes.
func procRSS(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + pid + "/status")
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; it is 100 on
// every Linux architecture Go supports, and the standard library has no
// sysconf to ask.
const clockTicks = 100

// procCPU reads the user plus system CPU time of a process, in seconds.
func procCPU(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields count from its ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/" + pid + "/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/" + pid + "/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(utime+stime) / clockTicks, nil
}

// raiseFileLimit lifts the soft open-file limit to the hard one and answers
// the limit now in force. It calls Setrlimit even when Go's runtime already
// raised the limit at start: Go then restores the original soft limit in
// children, and the spawned server and workers need the raised one.
func raiseFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	rl.Cur = rl.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}
