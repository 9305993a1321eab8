package sse

import (
	"errors"
	"net/http"
	"regexp"

	"github.com/pushgate/pushgate/poller/flow"
)

// statusName is what a status name looks like: the upstream's are upper
// case words joined by underscores, under 40 bytes. Anything else in a
// webhook is refused with 400: it did not come from the upstream.
var statusName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// webhookPayload is what pushgate takes of the upstream's webhook body:
// interviewId and onboardingStatus. Every other field (externalId,
// clientId, flowId, and any the upstream adds), of any JSON type, is
// ignored, so a field pushgate does not use can never make the upstream
// retry a webhook for half an hour.
type webhookPayload struct {
	InterviewID      string `json:"interviewId"`
	OnboardingStatus string `json:"onboardingStatus"`
}

// webhookKeys are the webhook body's keys pushgate reads, folded (see
// foldKey): only these may not be given twice.
var webhookKeys = map[string]bool{foldKey("interviewId"): true, foldKey("onboardingStatus"): true}

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
// Whatever the upstream may send again (a retry, a late or repeated
// status, an interview or status this gateway does not know) is answered
// 200, so it stops retrying; only a call that did not come from the
// upstream (credentials, body, names) is refused.
func (h *Handler) takeWebhook(r *http.Request) (string, error) {
	if !h.webhookSourceAllowed(r) {
		return "refused", errorf(http.StatusForbidden, "webhook calls are not taken from this address")
	}
	key := h.clientKey(r)
	if err := h.webhookThrottled(r, key); err != nil {
		return "refused", err
	}
	if err := h.webhookAuthorized(r); err != nil {
		h.webhookFailures.spend(key)
		return "refused", err
	}
	var p webhookPayload
	body, err := readBody(r)
	if err == nil {
		// Fields beyond the payload's are taken: the upstream may add some.
		err = decodeObject(body, &p, "webhook body", webhookKeys)
	}
	if err != nil {
		return "refused", err
	}
	switch {
	case !validInterviewID(p.InterviewID):
		return "refused", errorf(http.StatusBadRequest, "webhook interviewId missing or malformed")
	case !statusName.MatchString(p.OnboardingStatus):
		return "refused", errorf(http.StatusBadRequest, "webhook onboardingStatus missing or malformed: want 1 to 64 letters, digits or underscores")
	}
	if h.cfg.Relay != nil {
		// Taken: the integrator's backend gets it as the upstream sent
		// it, whatever pushgate makes of it below.
		h.cfg.Relay.Accepted(p.InterviewID, body)
	}
	switch {
	case !flow.Documented(p.OnboardingStatus):
		// The poller's reads pass an undocumented status through as data,
		// once the upstream's status API reports it; a pushed one alone
		// changes nothing.
		h.log.Info("webhook status the upstream does not document; acknowledged, nothing changed", "interview", p.InterviewID, "pushed", p.OnboardingStatus)
		return "unknown_status", nil
	}
	u, changed, err := h.cfg.Statuses.Push(p.InterviewID, p.OnboardingStatus)
	switch {
	case errors.Is(err, flow.ErrUnknownInterview):
		h.log.Debug("webhook for an interview this gateway does not track; ignored", "interview", p.InterviewID)
		return "unknown_interview", nil
	case err != nil:
		return "refused", err
	case changed:
		return "applied", nil
	case u.Status == p.OnboardingStatus && u.End == "", p.OnboardingStatus == flow.StatusExpired && u.End == flow.EndExpired:
		return "duplicate", nil
	}
	h.log.Info("webhook status ignored: the interview moved past it (a late or retried webhook), or its session ended", "interview", p.InterviewID, "pushed", p.OnboardingStatus, "current", u.Status, "end", u.End)
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
