package poller

import (
	"context"
	"slices"
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
	readAt     time.Time     // last upstream read that succeeded, or that recoveries cut (errCut): the next is due one interval on
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
	floor      uint64        // the highest stamp of an event id a client presented or got here: later changes are numbered above it
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
// interval, a backoff runs, or another node of the cluster reads it (while
// the cluster is reachable: clusterUp; a node cut off from it reads alone
// at once, not when the other node's lease would lapse).
func (st *interview) freshLocked(now time.Time, interval time.Duration, clusterUp bool) bool {
	return st.cur.Done() || now.Sub(st.readAt) < interval || now.Sub(st.pushedAt) < interval ||
		now.Before(st.retryAt) || (clusterUp && now.Before(st.following))
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
	if status == st.cur.Status {
		return false
	}
	return regresses(st.cur.Status, status) ||
		slices.ContainsFunc(st.history, func(u Update) bool { return u.Status == status && u.End == "" })
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

// floorLocked is the lowest id the next change may take (less one): above
// every id a client presented here or got from here (see since). A node
// whose clock is behind another's, numbering alone while their cluster is
// out of reach, thus numbers above the ids its clients bring from the
// other node, and they get its changes.
func (st *interview) floorLocked() uint64 { return st.floor * viewSpan }

// since returns what a client holding the event id last must get, oldest
// first, so that it never gets an id at or below last, a status it
// shows, a middle status its path went through, or a status behind the
// one it shows (see forClient and path):
//   - last 0 (a first connect): every remembered change;
//   - last one of the remembered ids: the changes after it;
//   - any other id (numbered by another node while their cluster was out
//     of reach, by this node before the change left its memory, by
//     another gateway lifetime, or for this client alone, see toClient)
//     whose status this node remembers: the changes after the last change
//     with that status here;
//   - any other id: the current status, when it is news to that client
//     and comes after its status in the flow (see compareViews); of two
//     statuses the upstream sends in no fixed order, this node cannot
//     tell which came first, as it never saw the client's.
//
// Each is numbered above last, with the view of the client's path. The
// ids a client brings raise the floor this interview's next change is
// numbered above (see floorLocked).
func (st *interview) since(last uint64) []Update {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.sinceLocked(last)
	ceiling := uint64(now().Add(floorAhead).UnixMilli())
	if last >= stampedFrom {
		st.floor = max(st.floor, min(last/viewSpan, ceiling))
	}
	if n := len(out); n > 0 {
		st.floor = max(st.floor, min(out[n-1].Seq/viewSpan, ceiling))
	}
	return out
}

func (st *interview) sinceLocked(last uint64) []Update {
	h := st.history
	if last == 0 || len(h) == 0 {
		return forClient(0, h)
	}
	if i := slices.IndexFunc(h, func(u Update) bool { return u.Seq == last }); i >= 0 {
		return forClient(last, h[i+1:])
	}
	held := statusIn(last)
	if i := st.showedLocked(held); i >= 0 {
		return forClient(last, h[i+1:])
	}
	cur := h[len(h)-1]
	if held != 0 && compareViews(viewOf(cur), held) <= 0 {
		return nil // the order of the two is not known here
	}
	return forClient(last, []Update{cur})
}

// showedLocked is the index in the history of the last change showing
// the status of plain view v; -1 when none does.
func (st *interview) showedLocked(v uint64) int {
	for i := len(st.history) - 1; i >= 0 && v != 0; i-- {
		if viewOf(st.history[i]) == v {
			return i
		}
	}
	return -1
}

// gate is Gate (see flow.go) for a change this node published: a change
// the client's path does not show, of a status the upstream sends in no
// fixed order with the client's, is news only when this node showed the
// client's status before it; otherwise this node cannot tell which came
// first, or knows it came before.
func (st *interview) gate(held, seq uint64) (uint64, bool) {
	send, ok := Gate(held, seq)
	if !ok || viewIn(held) == 0 || viewIn(seq) == 0 || compareViews(statusIn(seq), statusIn(held)) > 0 {
		return send, ok
	}
	// showed: the last change showing the client's status; at: the
	// change seq. A batch (a merge, a resync) is recorded whole before it
	// is published: the change may be in the history before the client's
	// status, and is then behind it.
	v, showed, at := statusIn(held), -1, -1
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, u := range st.history {
		if viewOf(u) == v {
			showed = i
		}
		if at < 0 && u.Seq == seq {
			at = i
		}
	}
	return send, showed >= 0 && (at < 0 || at >= showed)
}

// stopLocked stops the running poller, if any.
func (st *interview) stopLocked() {
	if st.stop != nil {
		st.stop()
		st.stop = nil
	}
}
