package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunServesAndStops starts the standalone simulator with faults from
// the command line, uses it over HTTP and stops it as SIGTERM would.
func TestRunServesAndStops(t *testing.T) {
	out, stdout := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-faults", `{"error_rate":1,"status":503}`}, stdout, io.Discard)
		stdout.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSpace(line[strings.Index(line, "http://"):])
	go io.Copy(io.Discard, out)

	req, _ := http.NewRequest(http.MethodPost, base+"/omni/start", strings.NewReader(`{"configurationId":"f"}`))
	req.Header.Set("api-version", "1.0")
	req.Header.Set("x-api-key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("start under -faults: %s, want 503", resp.Status)
	}
	resp, err = http.Get(base + "/sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct{ Start int }
	json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if stats.Start != 1 {
		t.Fatalf("stats %+v, want the start counted", stats)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after cancel")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-faults", `{"error_rate":2}`}, {"-faults", `nope`}, {"stray"}, {"-order", "random"}, {"-admin-email", "a@b.c"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
