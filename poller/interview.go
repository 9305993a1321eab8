package poller

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
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

	// publish is held from a change to its publish (see Manager.apply), so
	// the publishes of one interview keep Seq order whichever goroutine
	// (poll, push or the cluster's feed) makes them.
	publish sync.Mutex

	// last is cur, published for readers that take no lock: Manager.Last
	// runs for every event delivered to every subscriber. Set with cur.
	last atomic.Pointer[Update]

	mu         sync.Mutex    // protects every field below
	token      string        // upstream session token, "" when unknown
	cur        Update        // last known status; Seq 0 means none yet
	history    []Update      // the last HistoryLen changes, oldest first, ending with cur
	readAt     time.Time     // last successful upstream read
	retryAt    time.Time     // no upstream read before this (backoff, Retry-After)
	lastErr    error         // the last read's error while it keeps failing
	failures   int           // consecutive failed reads
	reading    int           // reads, loads and pushes in flight; the sweeper keeps the state meanwhile
	pushedAt   time.Time     // last status the upstream pushed; zero when none
	external   time.Time     // last change made by a push or another node
	following  time.Time     // another node reads upstream until then
	syncGen    uint64        // Manager.gen when last loaded from the cluster; 0: never
	staleMarks int           // times the feed showed the state stale; a load racing one does not count
	shared     Update        // the last change known stored in the cluster; Seq 0: none
	known      chan struct{} // closed once a status is known; nil after
	watchers   int
	stop       context.CancelFunc // stops the running poller; nil when none runs
	linger     *time.Timer        // pending stop after the last watcher left
	lingerGen  int                // tells a stale linger callback from the current one
	pollers    int                // pollers started; tells the running one from one still ending
	usedAt     time.Time          // last Register, Current, push or unwatch; drives Retention
}

func newInterview(id string) *interview {
	return &interview{id: id, usedAt: time.Now(), known: make(chan struct{})}
}

// idleLocked reports whether nothing uses the state now: no watcher, no
// poller, no read or load in flight.
func (st *interview) idleLocked() bool {
	return st.watchers == 0 && st.stop == nil && st.reading == 0
}

// freshLocked reports whether an upstream read would be redundant at now:
// the flow finished, the status was read or pushed within the last
// interval, a backoff runs, or another node of the cluster reads it.
func (st *interview) freshLocked(now time.Time, interval time.Duration) bool {
	return st.cur.Done() || now.Sub(st.readAt) < interval || now.Sub(st.pushedAt) < interval ||
		now.Before(st.retryAt) || now.Before(st.following)
}

// changesLocked decides whether status, or the end of the session (end
// not ""), read at readAt (zero for a push), changes the interview. A
// status the interview has moved past (see movedPastLocked) never comes
// back, whoever brings it: a webhook the upstream retried late, or a read
// that lags behind a webhook.
func (st *interview) changesLocked(status, end string, readAt time.Time) bool {
	switch {
	case st.cur.End != "":
		return false // an ended session never changes again
	case end != "":
		return !st.cur.Finished() // a finished flow never expires: its score stays readable
	case st.cur.Seq == 0:
		return true
	case st.cur.Status == status || st.movedPastLocked(status):
		return false
	case !readAt.IsZero() && !readAt.After(st.external):
		// A change made elsewhere (a push, another node) overtook this
		// read: its answer may be older than that change, so it is taken
		// only when it takes the flow further.
		return advances(st.cur.Status, status)
	}
	return true
}

// movedPastLocked reports whether the interview has moved past status:
// status is behind the current one in the flow (see FlowOrder), or the
// interview showed it before the current status. The upstream sends the
// checks between the first ID check and the end of the flow in no fixed
// order, so their order is learnt from the interview's own history.
func (st *interview) movedPastLocked(status string) bool {
	if regresses(st.cur.Status, status) {
		return true
	}
	for _, u := range st.history {
		if u.Status == status && u.End == "" && status != st.cur.Status {
			return true
		}
	}
	return false
}

// laterStatusLocked is status, or the current status when the interview
// moved past status: the status an end another node committed keeps.
func (st *interview) laterStatusLocked(status string) string {
	if st.cur.Seq > 0 && st.cur.End == "" && st.movedPastLocked(status) {
		return st.cur.Status
	}
	return status
}

// recordLocked makes u the interview's current status and stops its poller
// once the flow finished.
func (st *interview) recordLocked(u Update) {
	if st.known != nil {
		close(st.known)
		st.known = nil
	}
	st.cur = u
	st.last.Store(&u)
	if len(st.history) == HistoryLen {
		st.history = append(st.history[:0], st.history[1:]...)
	}
	st.history = append(st.history, u)
	if u.Done() {
		st.stopLocked()
	}
}

// since returns what a client holding the event id last must get, oldest
// first, so that it never gets an id at or below last, a change it has,
// or a status behind the one it shows:
//   - last 0 (a first connect): every remembered change;
//   - last one of the remembered ids: the changes after it;
//   - any other id (numbered by another node while their cluster was out
//     of reach, by this node before the change left its memory, or by
//     another gateway lifetime) whose view (the status its client shows)
//     this node remembers: the client is taken to be at the last change
//     with that view here, and gets the changes after it;
//   - any other id: the current status alone, when it is news to that
//     client (see Seen) and is not behind what the client shows (see
//     compareViews); an id with no view gets it, whatever it shows.
//
// A change stamped at or below last is sent renumbered just above it.
// When this returns nothing and the client is ahead of this node in time,
// this node's next change is numbered above last.
func (st *interview) since(last uint64) []Update {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.history
	if last == 0 || len(h) == 0 {
		return news(0, h)
	}
	for i := len(h) - 1; i >= 0 && h[i].Seq >= last; i-- {
		if h[i].Seq == last {
			return news(viewOf(h[i]), h[i+1:])
		}
	}
	cur := h[len(h)-1]
	held, shows := viewIn(last), viewOf(cur)
	if held != 0 {
		for i := len(h) - 1; i >= 0; i-- {
			if viewOf(h[i]) == held {
				return above(last, news(held, h[i+1:]))
			}
		}
	}
	switch {
	case held != 0 && compareViews(held, shows) > 0:
		return nil
	case held == 0 || cur.Seq > last || compareViews(held, shows) < 0:
		return above(last, []Update{cur})
	}
	return nil
}

// above renumbers, in place, the changes of us stamped at or below the
// change before them (last, for the first) just above it.
func above(last uint64, us []Update) []Update {
	for i := range us {
		if us[i].Seq <= last {
			us[i].Seq = renumber(last/viewSpan+1, us[i])
		}
		last = us[i].Seq
	}
	return us
}

// news returns the changes of h that a client showing view (0: nothing)
// does not have: a change that only renumbers the status before it (see
// reconcilePublishing) is left out.
func news(view uint64, h []Update) []Update {
	var out []Update
	for _, u := range h {
		if v := viewOf(u); v != view {
			out = append(out, u)
			view = v
		}
	}
	return out
}

// stopLocked stops the running poller, if any.
func (st *interview) stopLocked() {
	if st.stop != nil {
		st.stop()
		st.stop = nil
	}
}
