package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pushgate is the gateway, run as a child process of the app with
// -gateway=start. A nil *pushgate stands for a gateway run by someone
// else: it has nothing to wait for or stop.
type pushgate struct {
	url  string        // where the backend and the page reach it
	cmd  *exec.Cmd     // the running process
	dir  string        // a directory holding a binary built here; removed by stop
	done chan struct{} // closed once the process has exited
	err  error         // why it exited, from Wait; read after done
}

// startPushgate starts pushgate with the simulator and the flags an
// integrator sets, for an app whose page is on origin. It builds pushgate
// first unless o.pushgate names a binary.
func startPushgate(ctx context.Context, o options, origin string, logw io.Writer) (*pushgate, error) {
	p := &pushgate{url: "http://" + o.gatewayAddr, done: make(chan struct{})}
	bin := o.pushgate
	if bin == "" {
		var err error
		if p.dir, err = os.MkdirTemp("", "existing-app-"); err != nil {
			return nil, err
		}
		fmt.Fprintln(logw, "app      | building pushgate (go build ./cmd/pushgate; the first build takes a while)")
		bin = filepath.Join(p.dir, "pushgate")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pushgate/pushgate/cmd/pushgate")
		if out, err := build.CombinedOutput(); err != nil {
			os.RemoveAll(p.dir)
			return nil, fmt.Errorf("building pushgate (run this from the pushgate repository): %v\n%s", err, out)
		}
	}
	args := []string{
		"-addr", o.gatewayAddr,
		"-sim-addr", o.simAddr, // without -upstream, the built-in simulator plays Incode
		// Only the backend starts sessions, with POST /v1/sessions.
		"-public-sessions=false",
		// The page's origin: it loads client.js and streams across origins.
		"-allowed-origins", origin,
		// The languages the page offers (the first is the default).
		"-languages", "en-US,es-ES",
		// The backend's webhook route: the relay of Incode's webhooks and
		// pushgate's session events.
		"-relay-url", origin + "/webhook",
	}
	fmt.Fprintf(logw, "app      | starting pushgate %s (PUSHGATE_API_TOKEN and PUSHGATE_RELAY_SECRET in its environment)\n", strings.Join(args, " "))
	p.cmd = exec.Command(bin, args...)
	// Secrets go through the environment, where ps does not show them.
	p.cmd.Env = append(os.Environ(), "PUSHGATE_API_TOKEN="+o.apiToken, "PUSHGATE_RELAY_SECRET="+o.relaySecret)
	out := &prefixed{w: logw}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(p.dir)
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitHealthy returns once pushgate answers /healthz, or why it never will.
func (p *pushgate) waitHealthy(ctx context.Context, client *http.Client) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("pushgate exited while starting: %v", p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exited is closed when pushgate exits; never, for a nil p.
func (p *pushgate) exited() <-chan struct{} {
	if p == nil {
		return nil
	}
	return p.done
}

// stop asks pushgate to shut down, as Ctrl-C does, waits until it has
// exited (killing it after 15 s), and removes a binary built here. It
// returns why pushgate exited, if not cleanly.
func (p *pushgate) stop() error {
	if p == nil {
		return nil
	}
	defer os.RemoveAll(p.dir)
	p.cmd.Process.Signal(os.Interrupt) // fails only when it has exited
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// prefixed writes each line of pushgate's output after "pushgate | ", so
// that it reads apart from the app's. exec calls Write from one goroutine
// at a time.
type prefixed struct {
	w       io.Writer
	midLine bool // the last write ended inside a line
}

func (p *prefixed) Write(b []byte) (int, error) {
	var buf bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !p.midLine {
			buf.WriteString("pushgate | ")
		}
		buf.Write(line)
		p.midLine = line[len(line)-1] != '\n'
	}
	if _, err := p.w.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
