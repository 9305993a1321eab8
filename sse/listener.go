package sse

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rawAnswer is a whole HTTP answer with a JSON error, for a connection
// refused before any handler sees it.
func rawAnswer(status, code, msg string) []byte {
	body := `{"code":"` + code + `","error":"` + msg + `"}` + "\n"
	return []byte("HTTP/1.1 " + status + "\r\nContent-Type: application/json; charset=utf-8\r\n" +
		"Retry-After: 5\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// The answers to connections over the node's cap, and over one client's.
var (
	refusal       = rawAnswer("503 Service Unavailable", "capacity", "the gateway is at its connection capacity; try again shortly")
	clientRefusal = rawAnswer("429 Too Many Requests", "client_connection_limit", "too many open connections from this address")
)

// maxRefusing caps the connections being refused at once; past it, extra
// ones are closed without an answer.
const maxRefusing = 128

// Limits are the caps of a LimitListener.
type Limits struct {
	// Max caps the open connections, below the process's open-file limit;
	// zero or less means none.
	Max int
	// PerClient caps the open connections from one client address (an
	// IPv6 client's /64), so one client cannot hold every slot; zero or
	// less means none.
	PerClient int
	// Exempt are addresses PerClient does not apply to: the trusted
	// reverse proxies, whose connections carry many clients.
	Exempt []netip.Prefix
}

// LimitListener caps the open connections of ln as lim says: a connection
// over the node's cap is answered at once with a 503 and a JSON error, one
// over its client's cap with a 429, and closed, so clients are told
// plainly instead of waiting in a backlog the server can no longer accept
// from. Refusals are counted in pushgate_connections_refused_total{reason}
// when reg is not nil.
func LimitListener(ln net.Listener, lim Limits, reg prometheus.Registerer) (net.Listener, error) {
	l := &limitListener{Listener: ln, lim: lim, refusing: make(chan struct{}, maxRefusing), perClient: make(map[netip.Prefix]int)}
	if reg != nil {
		l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_connections_refused_total",
			Help: "Connections answered at once and closed: node_limit (503, the node's connection cap), client_limit (429, one client's).",
		}, []string{"reason"})
		open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_connections_open",
			Help: "Open client connections of the gateway's listener.",
		}, func() float64 { return float64(l.open.Load()) })
		for _, c := range []prometheus.Collector{l.refused, open} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

type limitListener struct {
	net.Listener
	lim      Limits
	open     atomic.Int64
	refusing chan struct{} // a slot per connection being refused
	refused  *prometheus.CounterVec

	mu        sync.Mutex // protects closed, perClient, and wg.Add against Close's Wait
	closed    bool
	perClient map[netip.Prefix]int // open connections by client; only clients with some
	wg        sync.WaitGroup       // refusals in flight
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.lim.Max > 0 && n > int64(l.lim.Max) {
			l.open.Add(-1)
			l.refuse(c, "node_limit", refusal)
			continue
		}
		client, ok := l.admit(c)
		if !ok {
			l.open.Add(-1)
			l.refuse(c, "client_limit", clientRefusal)
			continue
		}
		return &countedConn{Conn: c, l: l, client: client}, nil
	}
}

// admit counts c against its client's cap, and reports whether it is
// under it. The client is the zero Prefix when no client cap applies.
func (l *limitListener) admit(c net.Conn) (netip.Prefix, bool) {
	if l.lim.PerClient <= 0 {
		return netip.Prefix{}, true
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Prefix{}, true
	}
	addr := ap.Addr().Unmap()
	for _, p := range l.lim.Exempt {
		if p.Contains(addr) {
			return netip.Prefix{}, true
		}
	}
	bits := addr.BitLen()
	if addr.Is6() {
		bits = 64
	}
	client, _ := addr.Prefix(bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perClient[client] >= l.lim.PerClient {
		return client, false
	}
	l.perClient[client]++
	return client, true
}

// release gives a closed connection's slots back.
func (l *limitListener) release(client netip.Prefix) {
	l.open.Add(-1)
	if !client.IsValid() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perClient[client]--; l.perClient[client] <= 0 {
		delete(l.perClient, client)
	}
}

// refuse answers c with answer in its own goroutine: it reads the request
// first (briefly), so that closing does not reset the connection before
// the client reads the answer.
func (l *limitListener) refuse(c net.Conn, reason string, answer []byte) {
	if l.refused != nil {
		l.refused.WithLabelValues(reason).Inc()
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close() // refusing too many at once already
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		<-l.refusing
		c.Close()
		return
	}
	l.wg.Go(func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 1024)
		n, _ := c.Read(buf)
		if n > 0 {
			c.Write(answer)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
			io.Copy(io.Discard, io.LimitReader(c, 4096)) // let the client close first
		}
	})
}

// Close stops accepting and waits for refusals in flight.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// countedConn gives its slots back when closed.
type countedConn struct {
	net.Conn
	l      *limitListener
	client netip.Prefix // its client's slot; zero when none was taken
	once   sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.client) })
	return err
}
