package sse

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushgate/pushgate/poller"
)

// conn is the http.ResponseWriter r3labs/sse writes one client's stream
// through. r3labs writes each event in pieces and then flushes; conn
// collects the pieces and, on Flush, decides per whole frame:
//
//   - the first Flush comes right after r3labs registered the subscriber,
//     so the snapshot is written then: every remembered change newer than
//     the client's Last-Event-ID (on a first connect, all of them, ending
//     with the current status); any change published later reaches this
//     subscriber too, with no gap;
//   - a frame the client has seen (see poller.Gate: its id is not above
//     the last id sent, or it shows the status the client holds or one
//     past it) is dropped, so a change that raced with the snapshot, or
//     that the client saw before reconnecting with Last-Event-ID, on this
//     node or numbered apart by another, is never sent twice, and no
//     status moves back; the end of a flow numbered below the client's id
//     (another node's clock) is sent renumbered above it, never withheld;
//   - every write runs under WriteTimeout: a client that stops reading
//     fails its write and is dropped, and r3labs' stream goroutine, which
//     waits for it, moves on;
//   - after the frame that carries ONBOARDING_FINISHED, the stream ends.
//
// Writes happen only in the request goroutine (r3labs' ServeHTTP, then
// close); the Broker only calls end, which never blocks.
type conn struct {
	interviewID string
	client      string // the client's address, for the per-client cap
	broker      *Broker
	statuses    memory             // the poller's memory of this interview
	cancel      context.CancelFunc // ends r3labs' subscription of this client
	retryHint   atomic.Int64       // set by end: the retry hint close writes, in ms

	mu      sync.Mutex // protects every field below and all writes to w
	w       http.ResponseWriter
	rc      *http.ResponseController
	pending []byte // the frame r3labs is writing
	lastSeq uint64 // highest event id sent, or the client's Last-Event-ID
	started bool   // the snapshot was written
	done    bool   // no more writes: finished, failed, ended or returned
}

// memory is what a conn reads of the poller's state, without upstream calls.
type memory interface {
	Since(interviewID string, seq uint64) []poller.Update
	Last(interviewID string) (poller.Update, bool)
	Gate(interviewID string, held, seq uint64) (send uint64, news bool)
}

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

// Write collects a piece of the frame being written; Flush sends it.
func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.pending = append(c.pending, p...)
	}
	return len(p), nil
}

// Flush sends the collected frame, preceded on the first call by the
// snapshot. It runs in the request goroutine, from r3labs' ServeHTTP.
func (c *conn) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	frame := c.pending
	c.pending = c.pending[:0]
	if c.done {
		return
	}
	events := 0           // status events in frame; a heartbeat has none
	var stamped time.Time // when a published change was numbered; zero for snapshots
	if !c.started {
		c.started = true
		var snapshot []byte
		missed := c.statuses.Since(c.interviewID, c.lastSeq)
		for _, u := range missed {
			snapshot = append(snapshot, updateFrame(u, c.broker.cfg.Retry)...)
			c.lastSeq = u.Seq
		}
		if len(snapshot) == 0 && len(frame) == 0 {
			// Nothing missed: the stream still opens with bytes (the retry
			// hint, which dispatches no event), so a client can tell an
			// open stream from one a proxy holds back.
			snapshot = retryFrame(c.broker.cfg.Retry.Milliseconds())
		}
		frame = append(snapshot, frame...)
		events = len(missed)
	} else if seq, ok := frameID(frame); ok {
		if send, news := c.statuses.Gate(c.interviewID, c.lastSeq, seq); !news {
			c.broker.metrics.drop("duplicate")
			frame = nil // not sent; the stream may still be at its end
		} else {
			if send != seq {
				frame = renumberFrame(frame, seq, send)
			}
			c.lastSeq = send
			events = 1
			stamped = poller.Stamped(seq)
		}
	}
	if frame != nil && !c.send(frame) {
		return
	}
	c.broker.metrics.deliver(events, stamped)
	if u, ok := c.statuses.Last(c.interviewID); ok && u.Done() && c.lastSeq != 0 && poller.Shows(c.lastSeq, u.Seq) {
		c.finishLocked()
	}
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
