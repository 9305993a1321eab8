package flow

import "errors"

// Errors of a node's statuses (poller's Manager), which the HTTP side
// answers: the node is shutting down, or neither it nor its cluster knows
// the interview.
var (
	ErrClosed           = errors.New("poller: closed")
	ErrUnknownInterview = errors.New("poller: unknown interview")
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

// Update is one observed status of an interview. Seq grows with every
// change, so it orders the changes of one interview, and serves as the SSE
// event id (see nextID for its layout).
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
