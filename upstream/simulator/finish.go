package simulator

import (
	"errors"
	"net/http"
)

// finishAnswer is what GET /omni/finish-status answers; the sample
// backends read both fields.
type finishAnswer struct {
	// RedirectionURL is the redirectionUrl the session started with, ""
	// without one.
	RedirectionURL string `json:"redirectionUrl"`
	// Action is "approved" when the score's outcome is OK, else "none".
	// Samples compare it with "approved" only; the upstream's other values
	// are not published.
	Action string `json:"action"`
}

// finish marks the user's flow finished, as the upstream's finish-status
// does: the status becomes ONBOARDING_FINISHED, with its webhook, unless
// the flow has already ended (finished or reviewed: the answer is the
// same, the status stays). An expired flow cannot be finished: 410.
func (s *Simulator) finish(w http.ResponseWriter, r *http.Request, iv interview) {
	var ans finishAnswer
	err := s.update(iv.id, func(iv *interview) error {
		if iv.status == StatusExpired {
			return ErrFlowExpired
		}
		if !flowEnded(iv.status) {
			s.setStatusLocked(iv, StatusOnboardingFinished)
		}
		ans = finishAnswer{RedirectionURL: iv.start.RedirectionURL, Action: "none"}
		if iv.outcome == OutcomeOK {
			ans.Action = "approved"
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrFlowExpired):
		writeError(w, r, http.StatusGone, err.Error())
	case err != nil:
		writeError(w, r, http.StatusNotFound, "interview not found")
	default:
		s.log.Info("simulator: flow finished", "interview", iv.id, "action", ans.Action)
		writeJSON(w, http.StatusOK, ans)
	}
}
