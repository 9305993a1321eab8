package sse_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
)

// capsHandler answers "ok", and holds GET /hold open until the client
// leaves, as a stream does.
func capsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hold" {
			io.WriteString(w, "ok")
			return
		}
		io.WriteString(w, "held\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
}

// limitedServer serves capsHandler on loopback behind a Listener with lim,
// set up by Attach as the gateway's server is unless raw, whose metrics go
// to the returned registry.
func limitedServer(t *testing.T, lim sse.Limits, raw bool) (*httptest.Server, *prometheus.Registry) {
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
	srv := httptest.NewUnstartedServer(capsHandler())
	srv.Listener = limited
	if !raw {
		limited.Attach(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, reg
}

// client is one connection to a test server, spoken to byte by byte.
type client struct {
	net.Conn
	br *bufio.Reader
}

// dial opens a connection to srv from source (a loopback address), closed
// when the test ends (before the server).
func dial(t *testing.T, srv *httptest.Server, source string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	c, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c, br: bufio.NewReader(c)}
}

// answer is what a client got: the status and body, and whether the
// server closed the connection after it.
type answer struct {
	status int
	body   string
	closed bool
	header http.Header
}

// do sends one request on c and reads its answer; for GET /hold, only the
// first line of the body (the handler holds the rest). A status of 0 means
// the connection ended without an answer.
func (c *client) do(t *testing.T, method, path string) answer {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req, _ := http.NewRequest(method, "http://x"+path, nil)
	if err := req.Write(c); err != nil {
		return answer{}
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return answer{}
	}
	var body []byte
	if path == "/hold" {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		body = []byte(line)
	} else {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return answer{status: resp.StatusCode, body: string(body), closed: resp.Close, header: resp.Header}
}

// ended reports whether the server closed c within limit.
func (c *client) ended(limit time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := c.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// hold opens a connection from source that stays busy, as a stream does.
func hold(t *testing.T, srv *httptest.Server, source string) *client {
	t.Helper()
	c := dial(t, srv, source)
	if a := c.do(t, "GET", "/hold"); a.status != 200 {
		t.Fatalf("a stream from %s within the caps: %+v", source, a)
	}
	return c
}

// TestLimitListenerRefusesPlainly: over the node's cap, a client gets a 503
// with a JSON error and Retry-After at once, not a hang, with or without a
// server set up by Attach; the connections held keep working, and a slot
// freed is a slot taken.
func TestLimitListenerRefusesPlainly(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(map[bool]string{false: "attached", true: "raw"}[raw], func(t *testing.T) {
			srv, reg := limitedServer(t, sse.Limits{Max: 2}, raw)
			held := []*client{hold(t, srv, "127.0.0.1"), hold(t, srv, "127.0.0.1")}
			third := &http.Client{Transport: &http.Transport{}}
			defer third.CloseIdleConnections()
			resp, err := third.Get(srv.URL)
			if err != nil {
				t.Fatalf("over the cap: %v, want a 503 answer", err)
			}
			var e struct{ Error, Code string }
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode != 503 || e.Error == "" || e.Code != "capacity" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("over the cap: %d %+v, want 503 with a JSON error and Retry-After", resp.StatusCode, e)
			}
			if n := pollertest.Metric(t, reg, "pushgate_connections_refused_total", "reason", "node_limit"); n != 1 {
				t.Fatalf("refused counter %v, want 1", n)
			}
			if held[0].ended(50 * time.Millisecond) {
				t.Fatal("a held connection ended after a refusal")
			}
			held[1].Close()
			eventually(t, "the freed slot", func() bool { return pollertest.Metric(t, reg, "pushgate_connections_open") == 1 })
			if resp, err := third.Get(srv.URL); err != nil || resp.StatusCode != 200 {
				t.Fatalf("after a slot was freed: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
		})
	}
}

// TestLimitListenerCapsEachClient: one address holds at most PerClient
// connections (a client holding sockets open cannot take every slot);
// another address, and a trusted proxy, are not held back by it.
func TestLimitListenerCapsEachClient(t *testing.T) {
	srv, reg := limitedServer(t, sse.Limits{Max: 100, PerClient: 3, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}}, false)
	var held []*client
	for i := range 3 {
		c := dial(t, srv, "127.0.0.1")
		held = append(held, c)
		if a := c.do(t, "GET", "/"); a.status != 200 {
			t.Fatalf("connection %d of the client: %+v", i, a)
		}
	}
	over := dial(t, srv, "127.0.0.1")
	if a := over.do(t, "GET", "/"); a.status != 429 || !strings.Contains(a.body, `"code":"client_connection_limit"`) || !a.closed {
		t.Fatalf("a fourth connection of the client: %+v, want 429 at once, and the connection closed", a)
	}
	for _, source := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.3", "127.0.0.3"} {
		if a := dial(t, srv, source).do(t, "GET", "/"); a.status != 200 {
			t.Fatalf("a connection from %s: %+v", source, a)
		}
	}
	if n := pollertest.Metric(t, reg, "pushgate_connections_refused_total", "reason", "client_limit"); n != 1 {
		t.Fatalf("client_limit refusals %v, want 1", n)
	}
	held[0].Close()
	eventually(t, "the client's slot back", func() bool {
		return dial(t, srv, "127.0.0.1").do(t, "GET", "/").status == 200
	})
}

// TestProbesPassTheCaps: while one address holds its whole connection cap,
// or the node holds its own with streams, a health check or a scrape from
// there is still served (one request, then the connection is closed);
// anything else is refused as before, and counted.
func TestProbesPassTheCaps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lim    sse.Limits
		refuse int
	}{
		{"client cap", sse.Limits{Max: 100, PerClient: 2}, 429},
		{"node cap", sse.Limits{Max: 2}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, reg := limitedServer(t, tc.lim, false)
			hold(t, srv, "127.0.0.1")
			hold(t, srv, "127.0.0.1")
			for _, probe := range []struct{ method, path string }{
				{"GET", "/readyz"}, {"GET", "/healthz"}, {"HEAD", "/healthz"}, {"GET", "/metrics"}, {"GET", "/readyz?verbose=1"},
			} {
				c := dial(t, srv, "127.0.0.1")
				a := c.do(t, probe.method, probe.path)
				if a.status != 200 || !a.closed || (probe.method == "GET" && a.body != "ok") {
					t.Fatalf("%s %s over the %s: %+v, want 200 ok and Connection: close", probe.method, probe.path, tc.name, a)
				}
				if !c.ended(time.Second) {
					t.Fatalf("%s %s over the %s: the connection stays open after its answer", probe.method, probe.path, tc.name)
				}
			}
			for _, other := range []struct{ method, path string }{{"GET", "/"}, {"POST", "/readyz"}, {"GET", "/readyzz"}, {"GET", "/events"}} {
				if a := dial(t, srv, "127.0.0.1").do(t, other.method, other.path); a.status != tc.refuse || !a.closed || a.header.Get("Retry-After") == "" {
					t.Fatalf("%s %s over the %s: %+v, want %d", other.method, other.path, tc.name, a, tc.refuse)
				}
			}
			if n := pollertest.Metric(t, reg, "pushgate_connections_refused_total"); n != 4 {
				t.Fatalf("refusals counted %v, want 4: probes served are not refusals", n)
			}
		})
	}
}

// TestOverCapConnectionsAreBounded: a connection over a cap that sends
// nothing is closed within its window, and at most 128 such connections
// are open at once. Silent ones cannot shut probes out: a probe over the
// cap, from the same address as 128 silent connections or from another,
// takes the place of the one silent longest and is served, however many
// more silent ones follow it.
func TestOverCapConnectionsAreBounded(t *testing.T) {
	srv, reg := limitedServer(t, sse.Limits{Max: 100, PerClient: 1}, false)
	hold(t, srv, "127.0.0.1")
	hold(t, srv, "127.0.0.2")
	silent := make([]*client, 128)
	for i := range silent {
		silent[i] = dial(t, srv, "127.0.0.1")
	}
	// The server accepts connections in the order they were made: each
	// probe below comes after the silent ones dialled before it.
	var lastDial time.Time // the window of the last silent one starts about then
	for _, source := range []string{"127.0.0.1", "127.0.0.2"} {
		probe := dial(t, srv, source)
		for range 20 { // more silent ones after the probe
			silent = append(silent, dial(t, srv, "127.0.0.1"))
		}
		lastDial = time.Now()
		if a := probe.do(t, "GET", "/readyz"); a.status != 200 {
			t.Fatalf("a probe from %s over the cap, with 128 silent connections over it: %+v, want 200", source, a)
		}
	}
	for i, c := range silent {
		if !c.ended(5 * time.Second) {
			t.Fatalf("silent connection %d over the cap still open after 5s", i)
		}
	}
	if took := time.Since(lastDial); took > 3*time.Second {
		t.Fatalf("silent connections over the cap held %v, want at most their 2s window", took)
	}
	if n := pollertest.Metric(t, reg, "pushgate_connections_refused_total"); n < 40 {
		t.Fatalf("%v silent connections counted as refused, want at least the 40 pushed out", n)
	}
}

// pipeListener hands the server one end of in-memory connections that
// claim any remote address, so that the caps of IPv6 ranges can be tested
// on a machine without them.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (p *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.closed:
		return nil, net.ErrClosed
	}
}

func (p *pipeListener) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

func (p *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv6loopback, Port: 80} }

// remoteConn is a connection from a given address.
type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// dial connects from addr.
func (p *pipeListener) dial(t *testing.T, addr string) *client {
	t.Helper()
	server, c := net.Pipe()
	t.Cleanup(func() { c.Close() })
	p.conns <- remoteConn{Conn: server, remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), 443))}
	return &client{Conn: c, br: bufio.NewReader(c)}
}

// TestLimitListenerCapsIPv6Sites: an IPv6 client is capped by its /64, and
// the /64s of one /56 together by PerClient56 (twice PerClient unless
// set), so a client holding many /64s cannot multiply its cap; another
// /56 is not held back, and IPv4 clients are capped by their address.
func TestLimitListenerCapsIPv6Sites(t *testing.T) {
	sources := []string{
		"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1::3", // one /64: its third is over PerClient
		"2001:db8:0:2::1", "2001:db8:0:2::2", "2001:db8:0:3::1", "2001:db8:0:ff::1", // more /64s of the same /56
		"2001:db8:0:100::1", "2001:db8:0:100::2", // another /56
		"::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1", // one IPv4 address, mapped or not
	}
	for _, tc := range []struct {
		name  string
		per56 int
		want  []int // by source
	}{
		{"twice the /64 cap by default", 0, []int{200, 200, 429, 200, 200, 429, 429, 200, 200, 200, 200, 429}},
		{"3", 3, []int{200, 200, 429, 200, 429, 429, 429, 200, 200, 200, 200, 429}},
		{"none", -1, []int{200, 200, 429, 200, 200, 200, 200, 200, 200, 200, 200, 429}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeListener()
			l, err := sse.LimitListener(p, sse.Limits{PerClient: 2, PerClient56: tc.per56}, nil)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: capsHandler()}
			l.Attach(srv)
			served := make(chan struct{})
			go func() {
				defer close(served)
				srv.Serve(l)
			}()
			defer func() {
				srv.Close()
				<-served
			}()
			for i, source := range sources {
				if a := p.dial(t, source).do(t, "GET", "/"); a.status != tc.want[i] {
					t.Fatalf("connection %d, from %s: %d, want %d", i, source, a.status, tc.want[i])
				}
			}
		})
	}
}
