package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/sse/ssetest"
)

// TestMain checks that no test of the package, internal or external,
// leaves a goroutine behind: a gateway's Close and Serve's shutdown end
// everything New and Serve started.
func TestMain(m *testing.M) {
	testenv.Parallel(4) // the parallel tests wait on their gateways, not the CPU
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// served is a gateway that New built and Serve runs until the test ends,
// with its built-in simulator, and its address for the test's requests.
type served struct {
	*gateway.Gateway
	base string // http://127.0.0.1:port
}

// serve builds a gateway from cfg on loopback listeners of its own and
// its simulator's, and serves it until the test ends.
func serve(t testing.TB, cfg gateway.Config) served {
	t.Helper()
	ls := listen(t)
	g := build(t, cfg, ls)
	run(t, g)
	return served{g, "http://" + ls.Gateway.Addr().String()}
}

// listen binds loopback listeners for a gateway and its simulator.
func listen(t testing.TB) gateway.Listeners {
	t.Helper()
	ls, err := gateway.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// build builds a gateway from cfg on ls, quiet unless cfg has a logger;
// the caller serves it.
func build(t testing.TB, cfg gateway.Config, ls gateway.Listeners) *gateway.Gateway {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	g, err := gateway.New(cfg, ls)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// run serves g until the test ends; Serve must then return nil.
func run(t testing.TB, g *gateway.Gateway) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// session is what /onboarding-url hands the browser.
type session struct {
	URL         string `json:"url"`
	InterviewID string `json:"interviewId"`
	Token       string `json:"token"`
}

// start starts a session as the page does.
func start(t testing.TB, base string) session {
	t.Helper()
	var s session
	if resp, body := get(t, base+"/onboarding-url", nil); resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("/onboarding-url: %s %s", resp.Status, body)
	}
	return s
}

// open opens the session's event stream as the page does.
func open(t testing.TB, base string, s session) *ssetest.Stream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/events?interviewId="+s.InterviewID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Token", s.Token)
	return ssetest.Open(t, http.DefaultClient, req)
}

// get sends a GET with the headers given and returns the answer, its
// body read and closed, and the body.
func get(t testing.TB, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// waitFor polls cond until it holds, failing the test after 10s (a guard
// against hanging, not a measurement).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
	}
}
