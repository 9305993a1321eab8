package sse

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// conn is the http.ResponseWriter r3labs/sse serves one client's stream
// through. r3labs runs the stream (the response, the subscriber, its
// goroutine, the end when the client leaves) and wakes it up through Flush;
// what the stream writes is decided here, from the updates the Broker
// published into the interview's stream (see stream), never from r3labs'
// bytes, which are dropped:
//
//   - the first Flush comes right after r3labs registered the subscriber,
//     so the snapshot is written then: every remembered change newer than
//     the client's Last-Event-ID (on a first connect, all of them, ending
//     with the current status); any change published since the conn
//     joined follows, with no gap;
//   - a published change the client has seen (see flow.Gate: it shows the
//     status the client holds or one past it) is dropped, so a change that
//     raced with the snapshot, or that the client saw before reconnecting
//     with Last-Event-ID, on this node or numbered apart by another, is
//     never sent twice, and no status moves back; one numbered below the
//     client's id (another node's clock) is sent renumbered above it;
//   - every write runs under WriteTimeout: a client that stops reading
//     fails its write and is dropped, and r3labs' stream goroutine, which
//     waits for it, moves on;
//   - after the frame that carries ONBOARDING_FINISHED, the stream ends.
//
// Writes happen only in the request goroutine (r3labs' ServeHTTP, then
// close); the Broker only calls end, which never blocks, and publishes
// into the conn's stream, which the conn reads without a lock.
type conn struct {
	interviewID string
	client      string // the client's address, for the per-client cap
	broker      *Broker
	statuses    memory             // the poller's memory of this interview
	cancel      context.CancelFunc // ends r3labs' subscription of this client
	retryHint   atomic.Int64       // set by end: the retry hint close writes, in ms

	stream *stream // its interview's stream, whose changes it writes; set by join

	mu      sync.Mutex // protects every field below and all writes to w
	w       http.ResponseWriter
	rc      *http.ResponseController
	buf     []byte      // what Flush writes, kept for the next
	stamps  []time.Time // when the changes Flush writes were numbered, kept for the next
	at      *published  // the last change of the stream taken; its next ones are to take
	beats   uint64      // the stream's heartbeats taken
	lastSeq uint64      // highest event id sent, or the client's Last-Event-ID
	started bool        // the snapshot was written
	done    bool        // no more writes: finished, failed, ended or returned
}

// memory is what a conn reads of the poller's state, without upstream calls.
type memory interface {
	Since(interviewID string, seq uint64) []flow.Update
	Last(interviewID string) (flow.Update, bool)
	Gate(interviewID string, held, seq uint64) (send uint64, news bool)
}

// keptBuf is the largest write buffer a conn keeps for its next Flush: a
// few changes' frames, not a long snapshot.
const keptBuf = 512

func newConn(w http.ResponseWriter, b *Broker, statuses memory, interviewID, client string, lastSeq uint64, cancel context.CancelFunc) *conn {
	return &conn{
		interviewID: interviewID,
		client:      client,
		broker:      b,
		statuses:    statuses,
		cancel:      cancel,
		w:           w,
		rc:          http.NewResponseController(w),
		lastSeq:     lastSeq,
	}
}

func (c *conn) Header() http.Header { return c.w.Header() }

func (c *conn) WriteHeader(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.w.WriteHeader(code)
	}
}

// Write drops what r3labs writes: its events only wake the stream up (see
// wakeEvent); Flush writes the stream.
func (c *conn) Write(p []byte) (int, error) { return len(p), nil }

// join starts c on s, after the changes s published so far.
func (c *conn) join(s *stream) {
	c.stream, c.at, c.beats = s, s.tail, s.beats.Load()
}

// beat reports whether a heartbeat was asked for since it last asked.
func (c *conn) beat() bool {
	beats := c.stream.beats.Load()
	due := beats != c.beats
	c.beats = beats
	return due
}

// Flush writes what is due: on the first call the snapshot, then the
// published changes that are news to the client, or else a heartbeat when
// one is due. It runs in the request goroutine, from r3labs' ServeHTTP.
func (c *conn) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	beat := c.beat()
	out := c.buf[:0]
	snapshot := 0 // changes in the snapshot
	if !c.started {
		c.started = true
		out, snapshot = c.snapshotLocked(out)
	}
	out, stamps := c.newsLocked(out, c.stamps[:0])
	c.buf, c.stamps = out[:0], stamps[:0]
	if cap(out) > keptBuf {
		c.buf = nil // a snapshot's: not kept for the life of the stream
	}
	if len(out) == 0 && beat {
		out = heartbeatFrame
	}
	if len(out) > 0 {
		if !c.send(out) {
			return
		}
		c.broker.metrics.deliver(snapshot, time.Time{})
		for _, stamped := range stamps {
			c.broker.metrics.deliver(1, stamped)
		}
	}
	// Written or not (a final status the client shows already is not),
	// the stream ends once the client shows the end of the flow.
	if u, ok := c.statuses.Last(c.interviewID); ok && u.Done() && c.lastSeq != 0 && flow.Shows(c.lastSeq, u.Seq) {
		c.finishLocked()
	}
}

// snapshotLocked is what a client gets first: every remembered change newer
// than its Last-Event-ID. With nothing missed, the stream still opens with
// bytes (the retry hint, which dispatches no event), so a client can tell
// an open stream from one a proxy holds back; the changes published meanwhile
// follow it. It appends to out; n is the number of changes in it.
func (c *conn) snapshotLocked(out []byte) (_ []byte, n int) {
	missed := c.statuses.Since(c.interviewID, c.lastSeq)
	for _, u := range missed {
		out = append(out, updateFrame(u, c.broker.cfg.Retry)...)
		c.lastSeq = u.Seq
	}
	if len(out) == 0 {
		out = append(out, retryFrame(c.broker.cfg.Retry.Milliseconds())...)
	}
	return out, len(missed)
}

// newsLocked takes the changes its stream published since the last take,
// in order, and appends to out the frames of those that are news to the
// client (see memory.Gate), each under the id the client gets it with,
// and to stamps when each was numbered (see flow.Stamped).
func (c *conn) newsLocked(out []byte, stamps []time.Time) ([]byte, []time.Time) {
	for p := c.at.next.Load(); p != nil; p = p.next.Load() {
		c.at = p
		send, news := c.statuses.Gate(c.interviewID, c.lastSeq, p.u.Seq)
		if !news {
			c.broker.metrics.drop("duplicate")
			continue
		}
		frame := p.frame
		if send != p.u.Seq {
			u := p.u
			u.Seq = send
			frame = updateFrame(u, c.broker.cfg.Retry)
		}
		out = append(out, frame...)
		c.lastSeq = send
		stamps = append(stamps, flow.Stamped(p.u.Seq))
	}
	return out, stamps
}

// end asks for the stream to end with a retry hint. It never blocks, so
// the Broker may call it under its lock for many connections: the hint is
// written by close, in the request goroutine.
func (c *conn) end(retry time.Duration) {
	c.retryHint.Store(max(retry.Milliseconds(), 1))
	c.cancel()
}

// close runs in the request goroutine once r3labs' ServeHTTP has returned.
// It writes the retry hint end asked for, if the stream is still healthy,
// and marks the connection finished: the ResponseWriter must not be used
// after the handler returns.
func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ms := c.retryHint.Load(); ms > 0 && c.started && !c.done {
		c.send(retryFrame(ms))
	}
	c.finishLocked()
}

func (c *conn) finishLocked() {
	c.done = true
	c.cancel()
}

// send writes and flushes under the write deadline (an empty frame still
// flushes: the first Flush sends the response headers). On failure the
// client is dropped.
func (c *conn) send(frame []byte) bool {
	_ = c.rc.SetWriteDeadline(time.Now().Add(c.broker.cfg.WriteTimeout))
	_, err := c.w.Write(frame)
	if err == nil {
		err = c.rc.Flush()
	}
	if err != nil {
		reason := "gone"
		if errors.Is(err, os.ErrDeadlineExceeded) {
			reason = "slow"
		}
		c.broker.metrics.evict(reason)
		c.broker.log.Info("dropping SSE client", "interview", c.interviewID, "reason", reason, "err", err)
		c.finishLocked()
		return false
	}
	_ = c.rc.SetWriteDeadline(time.Time{})
	return true
}
