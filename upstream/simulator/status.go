package simulator

// Statuses the flow page sets.
const (
	StatusUnknown                      = "UNKNOWN"
	StatusIDValidationFinished         = "ID_VALIDATION_FINISHED"
	StatusIDValidationFinishedSecondID = "ID_VALIDATION_FINISHED_SECOND_ID"
	StatusGovernmentValidationFinished = "GOVERNMENT_VALIDATION_FINISHED"
	StatusPostProcessingFinished       = "POST_PROCESSING_FINISHED"
	StatusFaceValidationFinished       = "FACE_VALIDATION_FINISHED"
	StatusOnboardingFinished           = "ONBOARDING_FINISHED"
)

// Statuses that follow the user's flow: an executive's manual review, and
// the flow timeout (see Config.FlowTimeout).
const (
	StatusManualReviewApproved = "MANUAL_REVIEW_APPROVED"
	StatusManualReviewRejected = "MANUAL_REVIEW_REJECTED"
	StatusExpired              = "EXPIRED"
)

// flowEnded reports whether a session's flow is over: finished, decided by
// a manual review, or expired. The flow timeout leaves such a session alone.
func flowEnded(status string) bool {
	switch status {
	case StatusOnboardingFinished, StatusManualReviewApproved, StatusManualReviewRejected, StatusExpired:
		return true
	}
	return false
}

// Orders the flow page can set statuses in (Config.Order).
const (
	// OrderSteps sets one status per step, along Flow.
	OrderSteps = "steps"
	// OrderIncode sets them as Incode's flows send them: the ID checks,
	// then a second ID; government validation after the ID checks; the
	// face check, then post-processing, which ends in the background.
	OrderIncode = "incode"
)

// orderSteps lists, for each order, the statuses each of the flow page's
// four steps sets, in order.
var orderSteps = map[string][][]string{
	OrderSteps: {
		{StatusIDValidationFinished}, {StatusPostProcessingFinished},
		{StatusFaceValidationFinished}, {StatusOnboardingFinished},
	},
	OrderIncode: {
		{StatusIDValidationFinished, StatusIDValidationFinishedSecondID}, {StatusGovernmentValidationFinished},
		{StatusFaceValidationFinished, StatusPostProcessingFinished}, {StatusOnboardingFinished},
	},
}

// Path returns the statuses a session goes through when its flow page is
// played in order, starting with UNKNOWN; nil for an unknown order.
func Path(order string) []string {
	steps, ok := orderSteps[order]
	if !ok {
		return nil
	}
	path := []string{StatusUnknown}
	for _, step := range steps {
		path = append(path, step...)
	}
	return path
}

// Flow is the path the flow page walks by default (OrderSteps): a session
// starts at Flow[0] and its flow ends at the last. Tests and the load tool
// drive the simulator along it. It is the simulator's scenario, not a rule
// of the gateway, which takes statuses in the order they arrive.
var Flow = Path(OrderSteps)
