package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// TestNewServesAWholeFlow: a gateway New builds with the built-in
// simulator and nothing else configured serves the embedded page, starts
// a session on the simulator, streams every status of its flow in order
// to ONBOARDING_FINISHED and then ends the stream, and serves the score.
func TestNewServesAWholeFlow(t *testing.T) {
	t.Parallel()
	g := serve(t, gateway.Config{Poller: poller.Config{Interval: 20 * time.Millisecond}})
	if resp, body := get(t, g.base+"/", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>Identity verification</title>") {
		t.Fatalf("GET /: %s %.200s, want the embedded page", resp.Status, body)
	}
	s := start(t, g.base)
	if !strings.HasPrefix(s.URL, g.SimURL+"/flow/"+s.InterviewID) || g.Tokens.Verify(s.Token, s.InterviewID) != nil {
		t.Fatalf("session %+v: want a flow URL on the simulator (%s) and a token for the interview", s, g.SimURL)
	}
	st := open(t, g.base, s)
	prev := st.NextStatus(t)
	if prev.Status != simulator.Flow[0] {
		t.Fatalf("first event %+v, want %s", prev, simulator.Flow[0])
	}
	for _, status := range simulator.Flow[1:] {
		if err := g.Simulator.SetStatus(s.InterviewID, status); err != nil {
			t.Fatal(err)
		}
		u := st.NextStatus(t)
		if u.Status != status || u.Seq <= prev.Seq {
			t.Fatalf("got %+v after %+v, want %s numbered above it", u, prev, status)
		}
		prev = u
	}
	if prev.Status != flow.StatusFinished {
		t.Fatalf("the flow ended at %s, want %s", prev.Status, flow.StatusFinished)
	}
	if rest := st.Ended(t); len(rest) != 0 {
		t.Fatalf("after %s the stream sent %+v, want its end", flow.StatusFinished, rest)
	}
	if resp, body := get(t, g.base+"/fetch-score?interviewId="+s.InterviewID, http.Header{"X-Token": {s.Token}}); resp.StatusCode != http.StatusOK || body != "{\"status\":\"OK\"}\n" {
		t.Fatalf("/fetch-score: %s %s, want the simulator's verdict OK", resp.Status, body)
	}
}

// TestShutdownEndsEverything: Close, for a gateway whose Handler the
// caller serves, and Serve's shutdown each end every goroutine New, Serve
// and the traffic started (pollers, broker, simulator and its webhooks,
// streams, servers), with a stream open and webhooks flowing.
func TestShutdownEndsEverything(t *testing.T) {
	cfg := gateway.Config{Poller: poller.Config{Interval: time.Hour}, Simulator: gateway.SimulatorConfig{Webhooks: true}}
	t.Run("Close", func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		ls := listen(t)
		g := build(t, cfg, ls)
		srv := &http.Server{Handler: g.Handler, ReadHeaderTimeout: 10 * time.Second}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ls.Gateway) }()
		flowOnce(t, g, "http://"+ls.Gateway.Addr().String())
		g.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-served; err != http.ErrServerClosed {
			t.Fatal(err)
		}
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, before)
	})
	t.Run("Serve", func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		ls := listen(t)
		g := build(t, cfg, ls)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Serve(ctx) }()
		flowOnce(t, g, "http://"+ls.Gateway.Addr().String())
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, before)
	})
}

// flowOnce starts a session on the gateway at base, opens its stream and
// has the simulator push its first change by webhook. The stream stays
// open.
func flowOnce(t *testing.T, g *gateway.Gateway, base string) {
	t.Helper()
	s := start(t, base)
	st := open(t, base, s)
	st.NextStatus(t)
	if err := g.Simulator.SetStatus(s.InterviewID, simulator.Flow[1]); err != nil {
		t.Fatal(err)
	}
	if u := st.NextStatus(t); u.Status != simulator.Flow[1] {
		t.Fatalf("got %+v, want %s by webhook", u, simulator.Flow[1])
	}
}
