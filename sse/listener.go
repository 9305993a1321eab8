package sse

import (
	"container/list"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits are the caps of a Listener.
type Limits struct {
	// Max caps the open connections, below the process's open-file limit;
	// zero or less means none.
	Max int
	// PerClient caps the open connections from one client address (an
	// IPv6 client's /64), so one client cannot hold every slot; zero or
	// less means none.
	PerClient int
	// PerClient56 caps the open connections of one IPv6 /56 (what an ISP
	// usually gives one site), all its /64s together, so a client cannot
	// multiply PerClient by spreading over the /64s it holds. Zero means
	// twice PerClient (none when PerClient is none); negative means none.
	PerClient56 int
	// Exempt are addresses the client caps do not apply to: the trusted
	// reverse proxies, whose connections carry many clients.
	Exempt []netip.Prefix
	// IdleUnderLoad is how long a connection may wait for a request (kept
	// alive after one, or new) once the open connections reach three
	// quarters of Max; below that, the server's IdleTimeout and
	// ReadHeaderTimeout hold. Zero means 5s. It needs Attach.
	IdleUnderLoad time.Duration
}

// Listener caps the open connections of a listener as its Limits say.
//
// On a server set up by Attach, a connection over a cap is read (within
// overCapWindow): GET and HEAD of /healthz, /readyz and /metrics are
// served, so probes and scrapes pass whatever the clients of their
// address hold, and any other request is answered 503 (the node's cap) or
// 429 (its client's) with a JSON error, then the connection is closed. At
// most maxRefusing such connections are open at once; past it, a new one
// takes the place of the one silent longest, and is closed without an
// answer only when none is silent. Connections waiting for a request are
// tracked: at the node's cap the one waiting longest is closed to let the
// new one in, and under load they wait at most IdleUnderLoad. A stream is
// never among them: its request is being served.
//
// Without Attach, a connection over a cap is answered 503 or 429 at once,
// whatever it asks, and idle connections are left to the server.
type Listener struct {
	ln       net.Listener
	lim      Limits           // normalised: a cap of zero or less is none
	open     atomic.Int64     // connections counted against Max
	attached atomic.Bool      // Attach was called
	refusing chan struct{}    // a slot per connection over a cap being answered
	metrics  *listenerMetrics // nil without a registry

	mu         sync.Mutex // protects closed, perClient, waiting, each countedConn's wait fields, and wg.Add against Close's Wait
	closed     bool
	perClient  map[netip.Prefix]int // open connections by client (an IPv4 /32, an IPv6 /64) and IPv6 /56; only those with some
	waiting    waitLists
	silentOver list.List      // the overCapConns that have sent no request yet, oldest first
	wg         sync.WaitGroup // answers of refuseNow in flight
}

// LimitListener returns ln under lim. Its metrics (connections open,
// refused, and closed while idle) go to reg when it is not nil.
func LimitListener(ln net.Listener, lim Limits, reg prometheus.Registerer) (*Listener, error) {
	switch {
	case lim.PerClient56 == 0 && lim.PerClient > 0:
		lim.PerClient56 = 2 * lim.PerClient
	case lim.PerClient56 < 0:
		lim.PerClient56 = 0
	}
	if lim.IdleUnderLoad <= 0 {
		lim.IdleUnderLoad = 5 * time.Second
	}
	l := &Listener{ln: ln, lim: lim, refusing: make(chan struct{}, maxRefusing), perClient: make(map[netip.Prefix]int)}
	var err error
	if l.metrics, err = newListenerMetrics(reg, l); err != nil {
		return nil, err
	}
	return l, nil
}

// Attach sets s up to serve l (see Listener): s's ConnState tells l which
// connections wait for a request, and its ConnContext and Handler answer
// the connections over a cap. Hooks s already has still run. Call it
// before s.Serve(l), or s.Serve(tls.NewListener(l, config)): the caps see
// through TLS, and over HTTP/2 a connection waits while none of its
// streams is open.
func (l *Listener) Attach(s *http.Server) {
	state, connContext, h := s.ConnState, s.ConnContext, s.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	s.ConnState = func(c net.Conn, st http.ConnState) {
		l.connState(beneathTLS(c), st)
		if state != nil {
			state(c, st)
		}
	}
	s.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		if oc, ok := beneathTLS(c).(*overCapConn); ok {
			ctx = context.WithValue(ctx, overCapKey{}, oc)
		}
		return ctx
	}
	s.Handler = l.overCapGuard(h)
	l.attached.Store(true)
}

// beneathTLS returns the connection a TLS connection runs on: the server
// of a tls.NewListener over a Listener sees its connections wrapped.
func beneathTLS(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// Addr is the address of the listener under the caps.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Accept returns the next connection within the caps, or one over a cap
// to be answered by a server set up by Attach.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		cc := &countedConn{Conn: c, l: l}
		if !l.admit(cc) {
			if oc := l.overCap(c, clientRefusal); oc != nil {
				return oc, nil
			}
			continue
		}
		if !l.takeSlot() {
			l.release(cc, false)
			if oc := l.overCap(c, nodeRefusal); oc != nil {
				return oc, nil
			}
			continue
		}
		return cc, nil
	}
}

// admit counts c against its client's caps, and reports whether it is
// under them. c.client and c.site are the slots it took.
func (l *Listener) admit(c *countedConn) bool {
	if l.lim.PerClient <= 0 && l.lim.PerClient56 <= 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return true
	}
	addr := ap.Addr().Unmap()
	for _, p := range l.lim.Exempt {
		if p.Contains(addr) {
			return true
		}
	}
	var client, site netip.Prefix
	if l.lim.PerClient > 0 {
		bits := addr.BitLen()
		if addr.Is6() {
			bits = 64
		}
		client, _ = addr.Prefix(bits)
	}
	if addr.Is6() && l.lim.PerClient56 > 0 {
		site, _ = addr.Prefix(56)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if (client.IsValid() && l.perClient[client] >= l.lim.PerClient) ||
		(site.IsValid() && l.perClient[site] >= l.lim.PerClient56) {
		return false
	}
	for _, p := range []netip.Prefix{client, site} {
		if p.IsValid() {
			l.perClient[p]++
		}
	}
	c.client, c.site = client, site
	return true
}

// takeSlot counts a new connection against Max. Under load it first
// closes the connections that have waited for a request longer than
// IdleUnderLoad; at the cap, the one that has waited longest, so that the
// new connection gets in. It reports whether a slot was taken.
func (l *Listener) takeSlot() bool {
	if l.lim.Max <= 0 {
		l.open.Add(1)
		return true
	}
	now := time.Now()
	if l.open.Load()*4 >= int64(l.lim.Max)*3 {
		l.closeWaiting(l.waitingSince(now.Add(-l.lim.IdleUnderLoad)), "load")
	}
	if l.open.Add(1) <= int64(l.lim.Max) {
		return true
	}
	if l.closeWaiting(l.longestWaiting(now), "node_limit") > 0 {
		return true // the closed connection gave its slot back
	}
	l.open.Add(-1)
	return false
}

// release gives a connection's slots back: its client's, and its place
// under Max when counted reports one was taken.
func (l *Listener) release(c *countedConn, counted bool) {
	if counted {
		l.open.Add(-1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c.released = true
	l.waiting.remove(c)
	for _, p := range []netip.Prefix{c.client, c.site} {
		if !p.IsValid() {
			continue
		}
		if l.perClient[p]--; l.perClient[p] <= 0 {
			delete(l.perClient, p)
		}
	}
}

// Close stops accepting and waits for the answers refuseNow has in flight.
func (l *Listener) Close() error {
	err := l.ln.Close()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// countedConn holds slots under the caps, and gives them back when closed.
type countedConn struct {
	net.Conn
	l            *Listener
	client, site netip.Prefix // its client's slots; zero when none was taken
	once         sync.Once

	// Guarded by l.mu.
	released bool          // closed: never waiting again
	wait     *list.Element // its place in one of l.waiting's lists; nil when not waiting
	waitIn   *list.List    // that list
	since    time.Time     // when it began to wait
}

// CloseWrite lets the server end its side first (see overCapConn).
func (c *countedConn) CloseWrite() error { return closeWrite(c.Conn) }

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c, true) })
	return err
}

// listenerMetrics are a Listener's Prometheus collectors; nil records
// nothing.
type listenerMetrics struct {
	refused    *prometheus.CounterVec
	closedIdle *prometheus.CounterVec
}

func newListenerMetrics(reg prometheus.Registerer, l *Listener) (*listenerMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &listenerMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_connections_refused_total",
			Help: "Connections over a cap answered and closed: node_limit (503, the node's connection cap), client_limit (429, one client's). Probes served over a cap are not counted.",
		}, []string{"reason"}),
		closedIdle: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_connections_closed_idle_total",
			Help: "Connections closed while waiting for a request: node_limit (to let a new connection in at the node's cap), load (waited longer than allowed under load).",
		}, []string{"reason"}),
	}
	for _, reason := range []string{"node_limit", "client_limit"} {
		m.refused.WithLabelValues(reason) // at 0 from the start, as rules expect
	}
	for _, reason := range []string{"node_limit", "load"} {
		m.closedIdle.WithLabelValues(reason)
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushgate_connections_open",
		Help: "Open client connections of the gateway's listener, within its caps.",
	}, func() float64 { return float64(l.open.Load()) })
	for _, c := range []prometheus.Collector{m.refused, m.closedIdle, open} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *listenerMetrics) refuse(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *listenerMetrics) closeIdle(reason string, n int) {
	if m != nil && n > 0 {
		m.closedIdle.WithLabelValues(reason).Add(float64(n))
	}
}
