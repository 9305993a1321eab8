package poller

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// interview is the state of one interview on this node. It owns its locks;
// the Manager holds only the map of them.
//
// Naming rule: a function or method whose name ends in Locked needs the
// mu of the interview it works on held by its caller; one ending in
// Publishing needs that interview's publish held, and mu not held. No
// other function needs a lock held when it is called.
//
// Lock order: publish, then Manager.mu, then mu. Nothing takes publish or
// Manager.mu while holding mu, and mu is never held across a call to the
// upstream, the cluster or the Publisher.
type interview struct {
	id string // immutable

	// publish is held from a change to its publish (see Manager.change),
	// so the publishes of one interview keep Seq order whichever goroutine
	// (poll, push or the cluster's feed) makes them.
	publish sync.Mutex

	// last is the log's current status, published for readers that take
	// no lock: Manager.Last runs for every event delivered to every
	// subscriber. Set with every change recorded.
	last atomic.Pointer[flow.Update]

	mu  sync.Mutex // protects every field below
	log flow.Log   // the statuses: current, history, the shared copy's, the floor

	token    string    // upstream session token, "" when unknown
	readAt   time.Time // last upstream read that succeeded, or that recoveries cut (errCut): the next is due one interval on
	retryAt  time.Time // no upstream read before this (backoff, Retry-After)
	lastErr  error     // the last read's error while it keeps failing
	failures int       // consecutive failed reads
	reading  int       // reads, loads and pushes in flight; the sweeper keeps the state meanwhile
	pushedAt time.Time // last status the upstream pushed; zero when none
	external time.Time // last change made by a push or another node

	following  time.Time // another node reads upstream until then
	syncGen    uint64    // Manager.gen when last loaded from the cluster
	staleMarks int       // times the feed showed the state stale; a load racing one does not count

	known     chan struct{}      // closed once a status is known; nil after
	watchers  int                // open streams (and other Watch callers) on this node
	stop      context.CancelFunc // stops the running poller; nil when none runs
	linger    *time.Timer        // pending stop after the last watcher left
	lingerGen int                // tells a stale linger callback from the current one
	pollers   int                // pollers started; tells the running one from one still ending
	usedAt    time.Time          // last Register, Current, push or unwatch; drives Retention
}

func newInterview(id string) *interview {
	return &interview{id: id, log: flow.NewLog(id), usedAt: time.Now(), known: make(chan struct{})}
}

// curLocked is the current status; Seq 0 while none is known.
func (st *interview) curLocked() flow.Update { return st.log.Current() }

// idleLocked reports whether nothing uses the state now: no watcher, no
// poller, no read or load in flight.
func (st *interview) idleLocked() bool {
	return st.watchers == 0 && st.stop == nil && st.reading == 0
}

// freshLocked reports whether an upstream read would be redundant at now:
// the flow finished, the status was read or pushed within the last
// interval, a backoff runs, or another node of the cluster reads it (while
// the cluster is reachable: clusterUp; a node cut off from it reads alone
// at once, not when the other node's lease would lapse).
func (st *interview) freshLocked(now time.Time, interval time.Duration, clusterUp bool) bool {
	return st.curLocked().Done() || now.Sub(st.readAt) < interval || now.Sub(st.pushedAt) < interval ||
		now.Before(st.retryAt) || (clusterUp && now.Before(st.following))
}

// recordedLocked follows the changes the log recorded, oldest first: the
// first known status wakes those waiting for one, readers that take no
// lock see the latest, and the poller stops once the flow finished.
func (st *interview) recordedLocked(us ...flow.Update) {
	if len(us) == 0 {
		return
	}
	if st.known != nil {
		close(st.known)
		st.known = nil
	}
	u := us[len(us)-1]
	st.last.Store(&u)
	if slices.ContainsFunc(us, flow.Update.Done) {
		st.stopLocked()
	}
}

// since is the log's Since (what a client holding the event id last must
// get), on this node's clock.
func (st *interview) since(last uint64) []flow.Update {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.log.Since(last, flow.Now())
}

// gate is the log's Gate: what a client holding the event id held gets of
// the change numbered seq.
func (st *interview) gate(held, seq uint64) (uint64, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.log.Gate(held, seq)
}

// stopLocked stops the running poller, if any.
func (st *interview) stopLocked() {
	if st.stop != nil {
		st.stop()
		st.stop = nil
	}
}
