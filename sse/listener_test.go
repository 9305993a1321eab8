package sse_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
)

// TestLimitListenerRefusesPlainly: over the cap, a client gets a 503 with
// a JSON error at once, not a hang; the connections it holds keep working.
func TestLimitListenerRefusesPlainly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	limited, err := sse.LimitListener(ln, 2, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.Listener = limited
	srv.Start()
	defer srv.Close()

	get := func(c *http.Client) (int, error) {
		resp, err := c.Get(srv.URL)
		if err != nil {
			return 0, err
		}
		io.ReadAll(resp.Body) // read to the end, so the connection stays open for reuse
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Two clients hold the two connections.
	held := make([]*http.Client, 2)
	for i := range held {
		held[i] = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
		defer held[i].CloseIdleConnections()
		if code, err := get(held[i]); err != nil || code != 200 {
			t.Fatalf("client %d within the cap: %d %v", i, code, err)
		}
	}
	third := &http.Client{Transport: &http.Transport{}}
	defer third.CloseIdleConnections()
	resp, err := third.Get(srv.URL)
	if err != nil {
		t.Fatalf("over the cap: %v, want a 503 answer", err)
	}
	var e struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 503 || e.Error == "" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the cap: %d %+v, want 503 with a JSON error and Retry-After", resp.StatusCode, e)
	}
	if n := pollertest.Metric(t, reg, "pushgate_connections_refused_total"); n != 1 {
		t.Fatalf("refused counter %v, want 1", n)
	}
	// A held connection still serves.
	if code, err := get(held[0]); err != nil || code != 200 {
		t.Fatalf("held connection after a refusal: %d %v", code, err)
	}
	// A slot freed is a slot taken.
	held[1].CloseIdleConnections()
	eventually(t, "the freed slot", func() bool { return pollertest.Metric(t, reg, "pushgate_connections_open") == 1 })
	if code, err := get(third); err != nil || code != 200 {
		t.Fatalf("after a slot was freed: %d %v", code, err)
	}
}
