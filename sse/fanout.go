package sse

import (
	"sync/atomic"

	"github.com/pushgate/pushgate/poller/flow"
)

// stream is one interview's stream on this node: its connections, the
// chain of changes published to them, and its heartbeats. Publishing is
// O(1) whatever the connections: each conn follows the chain from the
// last change it took (see conn.take), without a lock; the changes every
// conn took are the garbage collector's.
type stream struct {
	conns map[*conn]struct{} // protected by Broker.mu
	tail  *published         // the last change published; a blank one before any. Broker.mu
	beats atomic.Uint64      // heartbeats asked for so far
}

// published is a change a stream published, with its frame as numbered,
// and a link to the change published after it.
type published struct {
	u     flow.Update
	frame []byte
	next  atomic.Pointer[published] // nil until the next change is published
}

func newStream() *stream {
	return &stream{conns: make(map[*conn]struct{}), tail: &published{}}
}

// publish adds a change to the chain. Its callers hold the Broker's lock.
func (s *stream) publish(u flow.Update, frame []byte) {
	p := &published{u: u, frame: frame}
	s.tail.next.Store(p)
	s.tail = p
}

// heartbeat asks every conn's next Flush for a heartbeat, unless it writes
// a change.
func (s *stream) heartbeat() { s.beats.Add(1) }
