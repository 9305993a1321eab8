package sse

import (
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/pushgate/pushgate/poller"
)

// maxStatusLen caps a pushed status: the known ones are under 40 bytes.
const maxStatusLen = 128

// webhookPayload is what the upstream POSTs on each status change.
type webhookPayload struct {
	InterviewID      string `json:"interviewId"`
	OnboardingStatus string `json:"onboardingStatus"`
	ExternalID       string `json:"externalId"`
	ClientID         string `json:"clientId"`
	FlowID           string `json:"flowId"`
}

// webhook takes a status change the upstream pushes and hands it to the
// poller, which publishes it with the same numbering and dedupe as polled
// changes. Unknown interviews are acknowledged and ignored, so the
// upstream does not retry them forever.
func (h *Handler) webhook(w http.ResponseWriter, r *http.Request) {
	result, err := h.takeWebhook(r)
	h.metrics.webhook(result)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

// takeWebhook checks and applies one webhook call, and names its result.
func (h *Handler) takeWebhook(r *http.Request) (string, error) {
	if !h.webhookSourceAllowed(r) {
		return "refused", errorf(http.StatusForbidden, "webhook calls are not taken from this address")
	}
	if err := h.webhookAuthorized(r); err != nil {
		return "refused", err
	}
	var p webhookPayload
	body, err := readBody(r)
	if err == nil {
		// Fields beyond the payload's are taken: the upstream may add some.
		err = decodeObject(body, &p, "webhook body", false)
	}
	if err != nil {
		return "refused", err
	}
	switch {
	case !validInterviewID(p.InterviewID):
		return "refused", errorf(http.StatusBadRequest, "webhook interviewId missing or malformed")
	case p.OnboardingStatus == "" || len(p.OnboardingStatus) > maxStatusLen || !utf8.ValidString(p.OnboardingStatus):
		return "refused", errorf(http.StatusBadRequest, "webhook onboardingStatus missing or malformed")
	}
	u, changed, err := h.cfg.Statuses.Push(p.InterviewID, p.OnboardingStatus)
	switch {
	case errors.Is(err, poller.ErrUnknownInterview):
		h.log.Debug("webhook for an interview this gateway does not track; ignored", "interview", p.InterviewID)
		return "unknown_interview", nil
	case err != nil:
		return "refused", err
	case changed:
		return "applied", nil
	case u.Status == p.OnboardingStatus:
		return "duplicate", nil
	}
	h.log.Info("webhook status ignored: the flow already finished, or the session ended", "interview", p.InterviewID, "pushed", p.OnboardingStatus, "current", u.Status)
	return "older", nil
}

func (h *Handler) webhookSourceAllowed(r *http.Request) bool {
	if len(h.cfg.WebhookSources) == 0 {
		return true
	}
	addr := h.clientIP(r)
	for _, p := range h.cfg.WebhookSources {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
