package sse

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// refusal is the whole answer to a connection over the cap.
var refusal = func() []byte {
	body := `{"error":"the gateway is at its connection capacity; try again shortly"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n" +
		"Retry-After: 5\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// maxRefusing caps the connections being refused at once; past it, extra
// ones are closed without an answer.
const maxRefusing = 128

// LimitListener caps the open connections of ln at max, below the
// process's open-file limit: a connection over the cap is answered at once
// with a 503 and a JSON error, and closed, so clients are told plainly
// instead of waiting in a backlog the server can no longer accept from.
// Refusals are counted in pushgate_connections_refused_total when reg is
// not nil.
func LimitListener(ln net.Listener, max int, reg prometheus.Registerer) (net.Listener, error) {
	l := &limitListener{Listener: ln, max: int64(max), refusing: make(chan struct{}, maxRefusing)}
	if reg != nil {
		l.refused = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_connections_refused_total",
			Help: "Connections answered 503 and closed because the node was at its connection cap.",
		})
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
	max      int64
	open     atomic.Int64
	refusing chan struct{} // a slot per connection being refused
	refused  prometheus.Counter

	mu     sync.Mutex // protects closed, and wg.Add against Close's Wait
	closed bool
	wg     sync.WaitGroup // refusals in flight
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &countedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

// refuse answers c with the 503 in its own goroutine: it reads the request
// first (briefly), so that closing does not reset the connection before
// the client reads the answer.
func (l *limitListener) refuse(c net.Conn) {
	if l.refused != nil {
		l.refused.Inc()
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
			c.Write(refusal)
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

// countedConn gives its slot back when closed.
type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
