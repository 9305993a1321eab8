package sse

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// onboardingURL starts an upstream session and hands the browser the flow
// URL and a token (also as a cookie scoped to this interview).
func (h *Handler) onboardingURL(w http.ResponseWriter, r *http.Request) {
	if h.cfg.BackendSessionsOnly {
		// The code tells a page (public/app.js) that no retry can help: it
		// words that for end users; the message is for API callers.
		writeError(w, r, h.log, errorf(http.StatusNotFound, "sessions are started by the integrator's backend (POST /v1/sessions): this gateway runs with -public-sessions=false").coded("backend_sessions_only"))
		return
	}
	language, err := h.browserStartOptions(r.URL.Query())
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	// The node's ceiling first: while it holds, a request makes no entry
	// in the per-address limits, so a flood from many addresses cannot grow
	// them. A request its address's limit refuses gives the node's turn back.
	wait, giveBack := h.nodeLimit.take("")
	if wait > 0 {
		h.metrics.rateLimit("/onboarding-url (node)")
		writeError(w, r, h.log, &Error{Status: http.StatusTooManyRequests, RetryAfter: wait, Code: "node_rate_limited",
			Message: "this gateway is starting too many sessions; try again in " + strconv.FormatInt(retrySeconds(wait), 10) + "s"})
		return
	}
	if wait := h.limits.wait(h.clientKey(r)); wait > 0 {
		giveBack()
		h.metrics.rateLimit("/onboarding-url")
		writeError(w, r, h.log, &Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Message: "too many new sessions from this address; try again in " + strconv.FormatInt(retrySeconds(wait), 10) + "s"})
		return
	}
	s, err := h.sessions.start(r.Context(), StartOptions{Language: language, ConfigurationID: h.defaultFlow()})
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.setSessionCookie(w, r, s.InterviewID, s.Token, s.Expires)
	writeJSON(w, http.StatusOK, map[string]string{"url": s.FlowURL, "interviewId": s.InterviewID, "token": s.Token, "language": language})
}

// browserStartOptions checks what a browser asks of a new session, and
// returns the flow's language. Each parameter comes once at most, and
// none the integrator's backend alone sets.
func (h *Handler) browserStartOptions(q url.Values) (string, error) {
	if k, ok := repeatedParam(q); ok {
		return "", errorf(http.StatusBadRequest, k+" given more than once")
	}
	if q.Has("externalCustomerId") || q.Has("redirectionUrl") || q.Has("customFields") || q.Has("configurationId") {
		return "", errorf(http.StatusBadRequest, "externalCustomerId, redirectionUrl, customFields and configurationId are set by the integrator's backend, never by a browser")
	}
	return pickLanguage(q.Get("language"), h.cfg.Languages)
}

// repeatedParam returns the least key q gives more than once, so that the
// error names the same one each time; ok is false when none is repeated.
func repeatedParam(q url.Values) (key string, ok bool) {
	for k, v := range q {
		if len(v) > 1 && (!ok || k < key) {
			key, ok = k, true
		}
	}
	return key, ok
}

// pickLanguage chooses the flow's language for what the page asked:
// the listed language it names, else the first listed one with the same
// primary language (es-MX gets es-ES), else the first listed. An empty ask
// gets the first; a malformed one is refused.
func pickLanguage(asked string, listed []string) (string, error) {
	if asked == "" {
		return listed[0], nil
	}
	if !languagePattern.MatchString(asked) {
		return "", errorf(http.StatusBadRequest, "language must be a language tag like en-US")
	}
	for _, l := range listed {
		if strings.EqualFold(l, asked) {
			return l, nil
		}
	}
	for _, l := range listed {
		if primaryLanguage(l) == primaryLanguage(asked) {
			return l, nil
		}
	}
	return listed[0], nil
}

// primaryLanguage is the primary language subtag of a tag: "es" of es-MX.
func primaryLanguage(tag string) string {
	p, _, _ := strings.Cut(tag, "-")
	return strings.ToLower(p)
}

// onboardingStatus answers the interview's status, for pages that poll.
func (h *Handler) onboardingStatus(w http.ResponseWriter, r *http.Request) {
	id, err := h.authorized(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	u, err := h.sessions.status(r.Context(), id)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"onboardingStatus": u.Status})
}

// fetchScore answers the score once the flow finished.
func (h *Handler) fetchScore(w http.ResponseWriter, r *http.Request) {
	id, err := h.authorized(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if wait := h.scoreLimits.wait(requestToken(r, id)); wait > 0 {
		h.metrics.rateLimit("/fetch-score")
		writeError(w, r, h.log, &Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Message: "too many score reads with this token; try again in " + strconv.FormatInt(retrySeconds(wait), 10) + "s"})
		return
	}
	score, err := h.sessions.score(r.Context(), id)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	// The verdict only: which check failed stays on the server, where the
	// integrator's backend can read it; shown to the browser, it would tell
	// a fraudster what to change.
	status := score.Status
	if status == "" {
		status = "UNKNOWN"
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": status})
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness says why the node is not ready (reason: draining,
// upstream_unavailable), or serves degraded (degraded: cluster_degraded),
// and what caused it; all empty when it is ready.
func (h *Handler) readiness() (reason, cause, degraded string) {
	if h.unready.Load() {
		return "draining", "", ""
	}
	if err := h.cfg.Statuses.Ready(); err != nil {
		return "upstream_unavailable", err.Error(), ""
	}
	if why := h.cfg.Statuses.Degraded(); why != "" {
		return "", why, "cluster_degraded"
	}
	return "", "", ""
}

// readyz answers 503 while shutting down or while the upstream cannot
// serve, and says when the node serves in a degraded mode. Its body names
// a reason code only; what caused it goes to the log, once per change, so
// a probe every few seconds does not flood it.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	reason, cause, degraded := h.readiness()
	state := reason + "/" + degraded
	if last := h.readyState.Swap(&state); last == nil || *last != state {
		switch {
		case reason != "":
			h.log.Warn("not ready", "reason", reason, "cause", cause)
		case degraded != "":
			h.log.Warn("ready, degraded", "reason", degraded, "cause", cause)
		case last != nil:
			h.log.Info("ready again")
		}
	}
	switch {
	case reason != "":
		w.Header().Set("Retry-After", strconv.FormatInt(retrySeconds(defaultRetry[http.StatusServiceUnavailable]), 10))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unready", "reason": reason})
	case degraded != "":
		writeJSON(w, http.StatusOK, map[string]string{"status": "degraded", "degraded": degraded})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}
