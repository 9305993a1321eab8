package sse

import (
	"container/list"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxRefusing caps the connections over a cap being answered at once.
// Past it, on a server set up by Attach, a new one takes the place of the
// one that has waited longest without sending its request (see
// takeRefusing); with none, or without Attach, it is closed without an
// answer.
const maxRefusing = 128

// overCapWindow bounds a connection over a cap on a server set up by
// Attach: its request must come, and its answer go, within it.
const overCapWindow = 2 * time.Second

// A refusal is the answer to a connection over a cap.
type refusal struct {
	reason string // the label of pushgate_connections_refused_total
	status int
	code   string
	msg    string
}

// The answers to connections over the node's cap, and over one client's.
var (
	nodeRefusal   = &refusal{"node_limit", http.StatusServiceUnavailable, "capacity", "the gateway is at its connection capacity; try again shortly"}
	clientRefusal = &refusal{"client_limit", http.StatusTooManyRequests, "client_connection_limit", "too many open connections from this address"}
)

func (r *refusal) body() string {
	return `{"code":"` + r.code + `","error":"` + r.msg + `"}` + "\n"
}

// write answers a request with r.
func (r *refusal) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Retry-After", "5")
	h.Set("Connection", "close")
	w.WriteHeader(r.status)
	io.WriteString(w, r.body())
}

// raw is r as a whole HTTP answer, for a connection no server reads.
func (r *refusal) raw() []byte {
	body := r.body()
	return []byte("HTTP/1.1 " + strconv.Itoa(r.status) + " " + http.StatusText(r.status) +
		"\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// probeRoute reports whether r is a probe or a scrape, served whatever
// the caps: a load balancer's or an orchestrator's health check often
// shares its address with clients, and the node's own fullness must not
// fail its liveness.
func probeRoute(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// overCap takes a connection over a cap. With a server set up by Attach
// it returns it, to be answered there; otherwise it answers it here, or
// closes it when maxRefusing are being answered already, and returns nil.
func (l *Listener) overCap(c net.Conn, r *refusal) net.Conn {
	if !l.takeRefusing() {
		l.metrics.refuse(r.reason)
		c.Close()
		return nil
	}
	if l.attached.Load() {
		by := time.Now().Add(overCapWindow)
		c.SetDeadline(by)
		oc := &overCapConn{Conn: c, l: l, refusal: r, by: by}
		l.mu.Lock()
		oc.silent = l.silentOver.PushBack(oc)
		l.mu.Unlock()
		return oc
	}
	l.metrics.refuse(r.reason)
	l.refuseNow(c, r.raw())
	return nil
}

// takeRefusing takes one of the maxRefusing. When all are taken, it
// closes the connection over a cap that has waited longest without
// sending a request, and takes its place: connections that open and say
// nothing (from one address or many) cannot hold every place for
// overCapWindow and shut out a probe, which sends its request at once.
func (l *Listener) takeRefusing() bool {
	select {
	case l.refusing <- struct{}{}:
		return true
	default:
	}
	l.mu.Lock()
	var oldest *overCapConn
	if e := l.silentOver.Front(); e != nil {
		oldest = e.Value.(*overCapConn)
		l.silentOver.Remove(e)
		oldest.silent = nil
	}
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	l.metrics.refuse(oldest.refusal.reason)
	oldest.Close() // gives its place back
	select {
	case l.refusing <- struct{}{}:
		return true
	default:
		return false
	}
}

// spoke notes that c sent a request: it no longer waits silent.
func (l *Listener) spoke(c *overCapConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.silent != nil {
		l.silentOver.Remove(c.silent)
		c.silent = nil
	}
}

// overCapKey marks the context of the requests of an overCapConn.
type overCapKey struct{}

// overCapGuard serves the first probe of a connection over a cap, refuses
// its other requests, and closes it after one answer (over HTTP/2, with a
// GOAWAY: requests already sent on it are refused meanwhile).
func (l *Listener) overCapGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		oc, ok := r.Context().Value(overCapKey{}).(*overCapConn)
		switch {
		case !ok:
			next.ServeHTTP(w, r)
		case probeRoute(r) && oc.served.CompareAndSwap(false, true):
			w.Header().Set("Connection", "close")
			next.ServeHTTP(w, r)
		default:
			l.metrics.refuse(oc.refusal.reason)
			oc.refusal.write(w)
		}
	})
}

// overCapConn is a connection over a cap: it takes no slot under the caps
// but one of the maxRefusing, which it gives back when closed, and every
// deadline set on it ends by overCapWindow after it was accepted.
type overCapConn struct {
	net.Conn
	l       *Listener
	refusal *refusal
	by      time.Time
	once    sync.Once
	silent  *list.Element // its place in l.silentOver until it sends a request or closes; guarded by l.mu
	// served is set by its first request: over HTTP/2 a connection may
	// send many at once before the GOAWAY that "Connection: close" asks
	// for, and only one of them is served.
	served atomic.Bool
}

func (c *overCapConn) bound(t time.Time) time.Time {
	if t.IsZero() || t.After(c.by) {
		return c.by
	}
	return t
}

func (c *overCapConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.bound(t)) }
func (c *overCapConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.bound(t)) }
func (c *overCapConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.bound(t)) }

// CloseWrite lets the server end its side first, so that a client still
// sending a body reads the answer rather than a reset.
func (c *overCapConn) CloseWrite() error { return closeWrite(c.Conn) }

func (c *overCapConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.spoke(c) // out of silentOver
		<-c.l.refusing
	})
	return err
}

// refuseNow answers c with answer in its own goroutine, which holds one of
// the maxRefusing: it reads the request first (briefly), so that closing
// does not reset the connection before the client reads the answer.
func (l *Listener) refuseNow(c net.Conn, answer []byte) {
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
		if closeWrite(c) == nil {
			io.Copy(io.Discard, io.LimitReader(c, 4096)) // let the client close first
		}
	})
}

// closeWrite ends c's sending side, when c can.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
