package poller

import (
	"hash/fnv"
	"time"
)

// Statuses of an onboarding flow, as the upstream reports them.
const (
	StatusUnknown                      = "UNKNOWN"
	StatusIDValidationFinished         = "ID_VALIDATION_FINISHED"
	StatusIDValidationFinishedSecondID = "ID_VALIDATION_FINISHED_SECOND_ID"
	StatusPostProcessingFinished       = "POST_PROCESSING_FINISHED"
	StatusFaceValidationFinished       = "FACE_VALIDATION_FINISHED"
	StatusGovernmentValidationFinished = "GOVERNMENT_VALIDATION_FINISHED"
	// StatusFinished ends the user's flow: the page closes the iframe on
	// it and the poller stops.
	StatusFinished             = "ONBOARDING_FINISHED"
	StatusManualReviewApproved = "MANUAL_REVIEW_APPROVED"
	StatusManualReviewRejected = "MANUAL_REVIEW_REJECTED"
)

// HistoryLen is how many changes of an interview are remembered, here and
// in a cluster's shared copy. A flow has a handful of statuses, so a
// reconnecting client catches up on every change it missed, not only the
// latest.
const HistoryLen = 16

// Update is one observed status of an interview. Seq grows with every
// change, so it orders the changes of one interview, and serves as the SSE
// event id (see nextSeq for its layout).
type Update struct {
	InterviewID string `json:"interviewId"`
	Status      string `json:"onboardingStatus"`
	Seq         uint64 `json:"seq"`
	// End is set once the upstream has forgotten the session: "expired"
	// (its token no longer works) or "not_found" (it no longer exists).
	// Status then keeps the last status seen. "" while the session lives.
	End string `json:"end,omitempty"`
}

// Session ends (Update.End).
const (
	EndExpired  = "expired"
	EndNotFound = "not_found"
)

// StatusExpired is the status the upstream reports, by webhook and by
// read, once its flow timeout ran out before the user finished. It is not
// published as a status: it ends the session (EndExpired), as a session
// the upstream forgot does. A finished flow never expires: its score
// stays readable.
const StatusExpired = "EXPIRED"

// Documented reports whether the upstream documents status: one of the
// statuses above, or StatusExpired.
func Documented(status string) bool { return stages[status] > 0 || status == StatusExpired }

// Done reports whether nothing will follow u: the flow finished, or the
// upstream forgot the session.
func (u Update) Done() bool { return u.Finished() || u.End != "" }

// Finished reports whether u ends the user's flow: ONBOARDING_FINISHED,
// or a manual review decided after it.
func (u Update) Finished() bool { return stages[u.Status] >= stageFinished }

// stages orders the statuses the upstream documents by how far they take
// the flow: nothing started, the first ID checked, then the checks that
// need it (a second ID, post-processing, the face check, government
// validation), which the upstream finishes in no fixed order and so share
// a stage; then the end of the flow, and a manual review's outcome after
// it. A status the upstream does not document has no stage (0).
var stages = map[string]int{
	StatusUnknown:                      1,
	StatusIDValidationFinished:         2,
	StatusIDValidationFinishedSecondID: 3,
	StatusPostProcessingFinished:       3,
	StatusFaceValidationFinished:       3,
	StatusGovernmentValidationFinished: 3,
	StatusFinished:                     stageFinished,
	StatusManualReviewApproved:         stageFinished + 1,
	StatusManualReviewRejected:         stageFinished + 1,
}

const stageFinished = 4

// stageOf is the stage a status is compared at. A status the upstream
// does not document is taken to come after UNKNOWN and before the end of
// the flow, in no order with the checks in between: it gets the stage of
// those checks, and so do they when compared with it.
func stageOf(status string, vsUndocumented bool) int {
	s := stages[status]
	if s == 0 || (vsUndocumented && s > 1 && s < stageFinished) {
		return 3
	}
	return s
}

// FlowOrder compares two statuses by how far they take the flow (see
// stages): negative when next is behind cur (UNKNOWN after any other
// status, the first ID check after a check that needs it, an unfinished
// status after a finished flow, ONBOARDING_FINISHED after a review's
// outcome), positive when next is further, zero when the upstream sends
// them in no fixed order (or they are one status).
func FlowOrder(cur, next string) int {
	undocumented := stages[cur] == 0 || stages[next] == 0
	return stageOf(next, undocumented) - stageOf(cur, undocumented)
}

// regresses reports whether next is behind cur in the flow.
func regresses(cur, next string) bool { return FlowOrder(cur, next) < 0 }

// advances reports whether next takes the flow further than cur.
func advances(cur, next string) bool { return FlowOrder(cur, next) > 0 }

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
// (see Shows and interview.since). Ids below stampedFrom were numbered
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
	// interview.floor): far enough for nodes whose clocks drift apart by
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

// nextSeq is the id of the change u, made on this node after the change
// numbered after, and numbered above prev: its stamp is the wall clock,
// or one above prev's when that is later; its view says what u shows,
// through the path to after (see path).
func nextSeq(prev, after uint64, u Update) uint64 {
	stamp := max(prev/viewSpan+1, uint64(now().UnixMilli()))
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
// more than clockSkew ahead of this node's clock. A Last-Event-ID that is
// not is answered as a first connect.
func Plausible(seq uint64) bool {
	return seq/viewSpan <= uint64(now().Add(clockSkew).UnixMilli()) || seq < stampedFrom
}
