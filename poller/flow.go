package poller

import "time"

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
// change (see nextSeq), so it orders the changes of one interview and
// serves as the SSE event id, the same on every node of a cluster.
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

// nextSeq is the sequence number of the change after prev: the wall clock
// in milliseconds, or prev+1 when that is larger. A gateway that restarted,
// or forgot an interview, thus numbers its changes above every id it handed
// out before, so a client reconnecting with an old Last-Event-ID is never
// mistaken for one that is up to date; and nodes of a cluster that numbered
// changes alone while the shared copy was out of reach agree again with
// the first change committed after it is back.
func nextSeq(prev uint64) uint64 {
	return max(prev+1, uint64(time.Now().UnixMilli()))
}
