package sse

import (
	"container/list"
	"net"
	"net/http"
	"time"
)

// freshGrace is how long a new connection may wait for its first request
// before it may be closed to let another in at the node's cap. A client
// sends its request within a round trip of connecting; one still silent
// after it is a preconnection, or a slow sender.
const freshGrace = time.Second

// waitLists are the connections waiting for a request, each list oldest
// first: new ones (no request yet) and idle ones (kept alive after one).
// They are kept only under a node cap (Max). The Listener's mu guards
// them; their zero value is empty.
type waitLists struct {
	fresh, idle list.List
}

// add puts c at the back of ls, waiting since now.
func (w *waitLists) add(c *countedConn, ls *list.List, now time.Time) {
	w.remove(c)
	c.since, c.waitIn, c.wait = now, ls, ls.PushBack(c)
}

// remove takes c out of its list, if it is in one.
func (w *waitLists) remove(c *countedConn) {
	if c.wait != nil {
		c.waitIn.Remove(c.wait)
		c.wait, c.waitIn = nil, nil
	}
}

// connState follows the server's view of the connections l counts: new
// and idle ones wait for a request; active ones (a stream, as long as its
// handler runs), hijacked and closed ones do not. The server calls it from
// each connection's goroutine.
func (l *Listener) connState(c net.Conn, st http.ConnState) {
	if oc, ok := c.(*overCapConn); ok {
		if st != http.StateNew {
			l.spoke(oc) // its request came (or it closed): no longer silent
		}
		return
	}
	cc, ok := c.(*countedConn)
	if !ok || l.lim.Max <= 0 { // without a cap, takeSlot never reads the lists
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiting.remove(cc)
	if cc.released {
		return
	}
	switch st {
	case http.StateNew:
		l.waiting.add(cc, &l.waiting.fresh, time.Now())
	case http.StateIdle:
		l.waiting.add(cc, &l.waiting.idle, time.Now())
	}
}

// waitingSince takes out of the lists every connection waiting since
// before cutoff.
func (l *Listener) waitingSince(cutoff time.Time) []*countedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*countedConn
	for _, ls := range []*list.List{&l.waiting.fresh, &l.waiting.idle} {
		for e := ls.Front(); e != nil; e = ls.Front() {
			c := e.Value.(*countedConn)
			if !c.since.Before(cutoff) {
				break
			}
			l.waiting.remove(c)
			out = append(out, c)
		}
	}
	return out
}

// longestWaiting takes out of the lists the idle connection that has
// waited longest or, with none, the new one that has, once it has waited
// freshGrace.
func (l *Listener) longestWaiting(now time.Time) []*countedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.waiting.idle.Front()
	if e == nil {
		if e = l.waiting.fresh.Front(); e == nil || now.Sub(e.Value.(*countedConn).since) < freshGrace {
			return nil
		}
	}
	c := e.Value.(*countedConn)
	l.waiting.remove(c)
	return []*countedConn{c}
}

// closeWaiting closes cs, which no longer wait in the lists, counting them
// under reason, and returns how many it closed. A client whose request was
// on its way as its connection was closed sees the connection end without
// an answer, as after any server's idle timeout: HTTP clients send an
// idempotent request again on a new connection then.
func (l *Listener) closeWaiting(cs []*countedConn, reason string) int {
	for _, c := range cs {
		c.Close()
	}
	l.metrics.closeIdle(reason, len(cs))
	return len(cs)
}
