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

// Done reports whether nothing will follow u: the flow finished, or the
// upstream forgot the session.
func (u Update) Done() bool { return u.Finished() || u.End != "" }

// Finished reports whether u ends the user's flow: ONBOARDING_FINISHED,
// or a manual review decided after it.
func (u Update) Finished() bool { return finalRank[u.Status] > 0 }

// finalRank orders the statuses that end the user's flow:
// ONBOARDING_FINISHED, then the outcomes of a manual review decided after
// it. Every other status, known or not, ranks 0: the upstream sends them
// in no fixed order (post-processing may finish after the face check,
// government validation after the ID checks), so they are taken in the
// order they arrive, and none can end the flow.
var finalRank = map[string]int{
	StatusFinished:             1,
	StatusManualReviewApproved: 2,
	StatusManualReviewRejected: 2,
}

// FlowOrder compares two statuses by how far they take the flow: negative
// when next would move a finished flow back (ONBOARDING_FINISHED after a
// manual review, or any unfinished status after either), positive when
// next finishes a flow cur had not, or decides its review; zero otherwise.
func FlowOrder(cur, next string) int {
	return finalRank[next] - finalRank[cur]
}

// regresses reports whether next would move a finished flow back.
func regresses(cur, next string) bool { return FlowOrder(cur, next) < 0 }

// advances reports whether next finishes the flow further than cur.
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
// (see Seen and interview.since). Ids below stampedFrom were numbered
// before ids carried a view; they are taken as showing nothing known.
const (
	viewSpan    = 1000
	stampedFrom = 100_000_000_000 * viewSpan // stamps before March 1973: ids of old gateways, with no view
	// clockSkew is how far ahead of this node's clock an id may be stamped
	// (by another node's clock) and still be taken as issued: ids further
	// ahead did not come from a gateway, and are answered as a first
	// connect.
	clockSkew = time.Minute
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

// viewRank orders views by how far they take the flow, as FlowOrder does,
// for a client whose status is known only by its view: an ended session
// is furthest, UNKNOWN (the flow not started) behind every other status.
func viewRank(v uint64) int {
	switch {
	case v == statusViews[StatusUnknown]:
		return -1
	case v == statusViews[StatusFinished]:
		return 1
	case v == statusViews[StatusManualReviewApproved] || v == statusViews[StatusManualReviewRejected]:
		return 2
	case v >= endViews[EndExpired] && v <= viewOtherEnd:
		return 3
	}
	return 0
}

// nextSeq is the id of the change u, numbered after the change prev: its
// stamp is the wall clock, or one above prev's when that is later.
func nextSeq(prev uint64, u Update) uint64 {
	return renumber(max(prev/viewSpan+1, uint64(time.Now().UnixMilli())), u)
}

// renumber is the id of u stamped at stamp.
func renumber(stamp uint64, u Update) uint64 { return stamp*viewSpan + viewOf(u) }

// Seen reports whether a client holding the event id held has seen the
// change numbered seq, or one that stands for it: seq is not above held,
// or both show the same status (one change that two nodes numbered apart,
// while their cluster was out of reach). A node never publishes the same
// status twice in a row, so a change with the view a client holds is
// never news to it.
func Seen(held, seq uint64) bool {
	v := viewIn(held)
	return seq <= held || (v != 0 && v == viewIn(seq))
}

// Plausible reports whether seq can be an id a gateway issued: not stamped
// more than clockSkew ahead of this node's clock. A Last-Event-ID that is
// not is answered as a first connect.
func Plausible(seq uint64) bool {
	return seq/viewSpan <= uint64(time.Now().Add(clockSkew).UnixMilli()) || seq < stampedFrom
}
