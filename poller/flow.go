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
}

// Finished reports whether u ends the user's flow: ONBOARDING_FINISHED,
// or a manual review decided after it.
func (u Update) Finished() bool {
	r, ok := flowRank[u.Status]
	return ok && r >= flowRank[StatusFinished]
}

// flowRank orders the statuses of a flow; later statuses rank higher, and
// the outcomes of a manual review tie.
var flowRank = map[string]int{
	StatusUnknown:                      0,
	StatusIDValidationFinished:         1,
	StatusIDValidationFinishedSecondID: 2,
	StatusPostProcessingFinished:       3,
	StatusFaceValidationFinished:       4,
	StatusGovernmentValidationFinished: 5,
	StatusFinished:                     6,
	StatusManualReviewApproved:         7,
	StatusManualReviewRejected:         7,
}

// FlowOrder compares two statuses by their place in the flow: negative
// when next comes before cur, positive when after, zero when either is not
// a known flow status (unknown statuses are never judged) or they tie.
func FlowOrder(cur, next string) int {
	rc, okc := flowRank[cur]
	rn, okn := flowRank[next]
	if !okc || !okn {
		return 0
	}
	return rn - rc
}

// regresses reports whether next is a known status that comes before cur.
func regresses(cur, next string) bool { return FlowOrder(cur, next) < 0 }

// advances reports whether next is a known status that comes after cur.
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
