package sse_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
)

// limitedServer serves "ok" on loopback behind a LimitListener with lim,
// whose metrics go to the returned registry.
func limitedServer(t *testing.T, lim sse.Limits) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	limited, err := sse.LimitListener(ln, lim, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.Listener = limited
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, reg
}

// TestLimitListenerRefusesPlainly: over the cap, a client gets a 503 with
// a JSON error at once, not a hang; the connections it holds keep working.
func TestLimitListenerRefusesPlainly(t *testing.T) {
	srv, reg := limitedServer(t, sse.Limits{Max: 2})

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

// TestLimitListenerCapsEachClient: one address holds at most PerClient
// connections (a client holding sockets open cannot take every slot);
// another address, and a trusted proxy, are not held back by it.
func TestLimitListenerCapsEachClient(t *testing.T) {
	srv, reg := limitedServer(t, sse.Limits{Max: 100, PerClient: 3, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}})
	addr := srv.Listener.Addr().String()
	// dial opens a connection from source and sends a request on it.
	dial := func(source string) (net.Conn, string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		return c, string(buf[:n])
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 3 {
		c, answer := dial("127.0.0.1")
		held = append(held, c)
		if !strings.HasPrefix(answer, "HTTP/1.1 200") {
			t.Fatalf("connection %d of the client: %q", i, answer)
		}
	}
	c, answer := dial("127.0.0.1")
	c.Close()
	if !strings.HasPrefix(answer, "HTTP/1.1 429") || !strings.Contains(answer, `"code":"client_connection_limit"`) {
		t.Fatalf("a fourth connection of the client: %q, want 429 at once", answer)
	}
	for _, source := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.3", "127.0.0.3"} {
		c, answer := dial(source)
		held = append(held, c)
		if !strings.HasPrefix(answer, "HTTP/1.1 200") {
			t.Fatalf("a connection from %s: %q", source, answer)
		}
	}
	if n := pollertest.Metric(t, reg, "pushgate_connections_refused_total", "reason", "client_limit"); n != 1 {
		t.Fatalf("client_limit refusals %v, want 1", n)
	}
	held[0].Close()
	eventually(t, "the client's slot back", func() bool {
		c, answer := dial("127.0.0.1")
		c.Close()
		return strings.HasPrefix(answer, "HTTP/1.1 200")
	})
}
