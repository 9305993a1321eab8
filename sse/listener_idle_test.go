package sse_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
)

// idle opens n connections from source that make one request each and
// then stay open, idle, as browsers and load balancers keep them; the
// first is the one idle longest. Each is idle in the listener's eyes
// before the next is opened: the server marks a connection idle after its
// answer went out, so a client may read the answer first.
func idle(t *testing.T, ts *capsTest, source string, n int) []*client {
	t.Helper()
	l := ts.srv.Listener.(*sse.Listener)
	_, before := l.Waiting()
	out := make([]*client, n)
	for i := range out {
		out[i] = ts.dial(source)
		if a := out[i].do(t, "GET", "/"); a.status != 200 {
			t.Fatalf("idle connection %d within the caps: %+v", i, a)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, idle := l.Waiting(); idle >= before+i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("idle connection %d not marked idle within 10s", i)
			}
		}
	}
	return out
}

// TestIdleConnectionsMakeRoom: at the node's cap, a new connection closes
// the one idle longest and gets in; streams are never closed for it, and
// with none idle, the new one is refused.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	ts := newCapsTest(t, sse.Limits{Max: 4})
	streams := []*client{hold(t, ts.srv, "127.0.0.1"), hold(t, ts.srv, "127.0.0.1")}
	kept := idle(t, ts, "127.0.0.1", 2)
	// A third client comes: the oldest idle connection goes, the rest stay.
	if a := ts.dial("127.0.0.2").do(t, "GET", "/hold"); a.status != 200 {
		t.Fatalf("a new stream at the cap, with idle connections: %+v, want it in", a)
	}
	if !kept[0].ended(time.Second) {
		t.Fatal("the connection idle longest is still open")
	}
	if kept[1].ended(50*time.Millisecond) || streams[0].ended(50*time.Millisecond) || streams[1].ended(50*time.Millisecond) {
		t.Fatal("closed more than the connection idle longest")
	}
	// Another comes: the last idle connection goes.
	if a := ts.dial("127.0.0.2").do(t, "GET", "/hold"); a.status != 200 || !kept[1].ended(time.Second) {
		t.Fatalf("a second new stream: %+v, want it in, and the last idle connection closed", a)
	}
	// Only streams are left: the next is refused, and they stay.
	if a := ts.dial("127.0.0.2").do(t, "GET", "/"); a.status != 503 {
		t.Fatalf("at the cap with streams alone: %+v, want 503", a)
	}
	for i, s := range streams {
		if s.ended(50 * time.Millisecond) {
			t.Fatalf("stream %d was closed to make room", i)
		}
	}
	if n := ts.metric("pushgate_connections_closed_idle_total", "reason", "node_limit"); n != 2 {
		t.Fatalf("closed_idle{node_limit} %v, want 2", n)
	}
}

// TestIdleTimeoutShrinksUnderLoad: once three quarters of the cap are
// open, connections idle longer than IdleUnderLoad are closed as new ones
// come; below that, the server's own idle timeout holds.
func TestIdleTimeoutShrinksUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		max    int
		closed int
	}{
		{max: 8, closed: 6}, // 6 idle and a stream: 7 of 8 open
		{max: 100, closed: 0},
	} {
		t.Run(fmt.Sprintf("max %d", tc.max), func(t *testing.T) {
			ts := newCapsTest(t, sse.Limits{Max: tc.max, IdleUnderLoad: 100 * time.Millisecond})
			stream := hold(t, ts.srv, "127.0.0.1")
			kept := idle(t, ts, "127.0.0.1", 6)
			time.Sleep(200 * time.Millisecond)
			if a := ts.dial("127.0.0.2").do(t, "GET", "/"); a.status != 200 {
				t.Fatalf("a new connection: %+v", a)
			}
			closed := 0
			for _, c := range kept {
				if c.ended(100 * time.Millisecond) {
					closed++
				}
			}
			if closed != tc.closed || stream.ended(50*time.Millisecond) {
				t.Fatalf("%d idle connections closed (stream closed: %v), want %d and the stream open", closed, stream.ended(0), tc.closed)
			}
			if n := ts.metric("pushgate_connections_closed_idle_total", "reason", "load"); n != float64(tc.closed) {
				t.Fatalf("closed_idle{load} %v, want %d", n, tc.closed)
			}
		})
	}
}

// TestSilentConnectionsGetAGrace: a new connection that has not sent its
// request yet is closed to make room only after a second: a client sends
// its request within a round trip of connecting.
func TestSilentConnectionsGetAGrace(t *testing.T) {
	ts := newCapsTest(t, sse.Limits{Max: 2})
	// The server accepts in order and runs the StateNew hook of each
	// connection before accepting the next: both wait by the third's turn.
	silent := []*client{ts.dial("127.0.0.1"), ts.dial("127.0.0.1")}
	if a := ts.dial("127.0.0.2").do(t, "GET", "/"); a.status != 503 {
		t.Fatalf("at the cap, with connections just opened: %+v, want 503", a)
	}
	time.Sleep(time.Second)
	if a := ts.dial("127.0.0.2").do(t, "GET", "/"); a.status != 200 {
		t.Fatalf("at the cap, with connections silent for a second: %+v, want 200", a)
	}
	if !silent[0].ended(time.Second) || silent[1].ended(50*time.Millisecond) {
		t.Fatal("want the connection silent longest closed, and the other open")
	}
}

// capsTest is a server behind a Listener set up by Attach.
type capsTest struct {
	t   *testing.T
	srv *httptest.Server
	reg *prometheus.Registry
}

func newCapsTest(t *testing.T, lim sse.Limits) *capsTest {
	srv, reg := limitedServer(t, lim, false)
	return &capsTest{t: t, srv: srv, reg: reg}
}

func (ts *capsTest) dial(source string) *client { return dial(ts.t, ts.srv, source) }

func (ts *capsTest) metric(name string, labels ...string) float64 {
	return pollertest.Metric(ts.t, ts.reg, name, labels...)
}
