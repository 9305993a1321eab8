package flow

import (
	"hash/fnv"
	"time"
)

// Event ids. An Update's Seq is its SSE event id, the same on every node
// while the nodes share a cluster:
//
//	Seq = stamp*1000 + view
//
// stamp is the wall clock, in milliseconds, when the change was numbered
// (or one above the change before it, when that is later), so the ids of
// one interview grow with time on every node, across restarts, and across
// nodes that numbered changes alone while their cluster was out of reach.
// view names what the change shows (see viewOf), so that a node that never
// saw an id still tells what the client holding it shows: whether that
// client has the current status, or is further in the flow than this node
// (see Shows and Log.Since). Ids below stampedFrom were numbered
// before ids carried a view; they are taken as showing nothing known.
const (
	viewSpan    = 1000
	stampedFrom = 100_000_000_000 * viewSpan // stamps before March 1973: ids of old gateways, with no view
	// clockSkew is how far ahead of this node's clock an id may be stamped
	// (by another node's clock) and still be taken as issued: ids further
	// ahead did not come from a gateway, and are answered as a first
	// connect.
	clockSkew = time.Minute
	// floorAhead bounds how far ahead of this node's clock the ids a
	// client brings may lift the stamps of its next changes (see
	// Log.floor): far enough for nodes whose clocks drift apart by
	// seconds, and well within clockSkew of any node, so that no client's
	// id makes the interview's ids implausible on a node whose clock is
	// behind.
	floorAhead = 10 * time.Second
)

// Views of the statuses and ends the upstream documents; other statuses
// get a view from a hash of their name, from 100 to 999.
var (
	statusViews = map[string]uint64{
		StatusUnknown: 1, StatusIDValidationFinished: 2, StatusIDValidationFinishedSecondID: 3,
		StatusPostProcessingFinished: 4, StatusFaceValidationFinished: 5, StatusGovernmentValidationFinished: 6,
		StatusFinished: 7, StatusManualReviewApproved: 8, StatusManualReviewRejected: 9,
	}
	endViews = map[string]uint64{EndExpired: 10, EndNotFound: 11}
)

const (
	viewOtherEnd    = 12  // an end the upstream does not document
	viewHashedFirst = 100 // first view of a status known only by its hash
)

// viewOf is the view of what u shows, never 0.
func viewOf(u Update) uint64 {
	if u.End != "" {
		if v, ok := endViews[u.End]; ok {
			return v
		}
		return viewOtherEnd
	}
	if v, ok := statusViews[u.Status]; ok {
		return v
	}
	h := fnv.New32a()
	h.Write([]byte(u.Status))
	return viewHashedFirst + uint64(h.Sum32())%(viewSpan-viewHashedFirst)
}

// viewIn is the view an id carries; 0 when it carries none.
func viewIn(seq uint64) uint64 {
	if seq < stampedFrom {
		return 0
	}
	return seq % viewSpan
}

// compareViews compares two views by how far what they show takes the
// flow, as FlowOrder compares statuses, for a client whose status is
// known only by its view: positive when a is further than b. An ended
// session is furthest; a status known only by its hash counts as one the
// upstream does not document.
func compareViews(a, b uint64) int {
	ea, eb := endedView(a), endedView(b)
	if ea || eb {
		return boolInt(ea) - boolInt(eb)
	}
	return FlowOrder(statusOfView(b), statusOfView(a))
}

// endedView reports whether v shows an ended session.
func endedView(v uint64) bool { return v >= endViews[EndExpired] && v <= viewOtherEnd }

// statusOfView is the documented status v shows; "" (no stage) for a
// status known only by its hash.
func statusOfView(v uint64) string {
	if v < uint64(len(viewStatuses)) {
		return viewStatuses[v]
	}
	return ""
}

// viewStatuses inverts statusViews: the documented status of each view
// up to viewOtherEnd, "" for none.
var viewStatuses = func() (a [viewOtherEnd + 1]string) {
	for s, v := range statusViews {
		a[v] = s
	}
	return a
}()

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nextID is the id of the change u, made at now after the change
// numbered after, and numbered above prev: its stamp is now, or one above
// prev's when that is later; its view says what u shows, through the path
// to after (see path).
func nextID(prev, after uint64, u Update, now time.Time) uint64 {
	stamp := max(prev/viewSpan+1, uint64(now.UnixMilli()))
	return stamp*viewSpan + pathOf(viewIn(after)).then(viewOf(u)).view()
}

// Stamped returns when the change numbered seq was numbered: when the node
// that read it, or took its webhook, did so (by that node's clock), unless
// the stamp was raised above an id numbered before (a client's, or
// another node's, up to floorAhead ahead of the clock). Ids numbered
// before ids carried a stamp give the zero time.
func Stamped(seq uint64) time.Time {
	if seq < stampedFrom {
		return time.Time{}
	}
	return time.UnixMilli(int64(seq / viewSpan))
}

// Shows reports whether a client holding the event id held shows the
// change numbered seq, or is past it (see path.passed): the same status
// (one change two nodes numbered apart, while their cluster was out of
// reach), a middle status its path went through, or one behind its status
// in the flow. It ends a stream at the end of the session. An id with no
// view (an older gateway's) shows what is numbered at or below it.
func Shows(held, seq uint64) bool {
	hv, sv := viewIn(held), viewIn(seq)
	if hv == 0 || sv == 0 {
		return seq <= held
	}
	return pathOf(hv).passed(pathOf(sv).status)
}

// Gate decides what a client holding the event id held gets of a change
// numbered seq, published while its stream is open: nothing (ok false)
// when the client shows it or is past it (see Shows); else the id to send
// it under (see toClient): numbered above held, by another node's clock
// or not, and with the view of the client's path through it, so that no
// node later takes a status the client went through for news. An id with
// no view (an older gateway's) is compared by number alone.
func Gate(held, seq uint64) (send uint64, ok bool) {
	switch {
	case held == 0:
		return seq, true
	case Shows(held, seq):
		return 0, false
	case viewIn(held) == 0 || viewIn(seq) == 0:
		return seq, true
	}
	return toClient(held, seq, viewIn(seq)), true
}

// Plausible reports whether seq can be an id a gateway issued: not stamped
// more than clockSkew ahead of now (this node's clock, see Now). A
// Last-Event-ID that is not is answered as a first connect.
func Plausible(seq uint64, now time.Time) bool {
	return seq/viewSpan <= uint64(now.Add(clockSkew).UnixMilli()) || seq < stampedFrom
}

// IDAt is the id of the change u numbered at, with no change before it:
// what a node whose clock reads at numbers a first change.
func IDAt(at time.Time, u Update) uint64 { return nextID(0, 0, u, at) }
