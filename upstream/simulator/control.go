package simulator

import (
	"encoding/json"
	"errors"
	"net/http"
)

// The control API lets tests and load tools drive interviews and the
// Simulator. It is served under /sim/ behind controlAccess: on loopback to
// any program, beyond it only with the control token, and to no web page
// (no Origin header, JSON bodies only, a loopback Host; see access.go). The
// flow page does not use it: its steps go to the flow routes, with the
// interview's flow key.

// controlRoutes builds the router of the control API; routes mounts it at
// /sim/ behind the access check.
func (s *Simulator) controlRoutes() http.Handler {
	m := http.NewServeMux()
	get, post, del := http.MethodGet, http.MethodPost, http.MethodDelete
	handle(m, "/sim/interviews/{id}", map[string]http.Handler{
		get: http.HandlerFunc(s.controlSession),
		del: http.HandlerFunc(s.controlDelete),
	})
	handle(m, "/sim/interviews/{id}/expire", map[string]http.Handler{post: http.HandlerFunc(s.controlExpire)})
	handle(m, "/sim/interviews/{id}/timeout", map[string]http.Handler{post: http.HandlerFunc(s.controlTimeout)})
	handle(m, "/sim/interviews/{id}/status", map[string]http.Handler{post: http.HandlerFunc(s.controlStatus)})
	handle(m, "/sim/interviews/{id}/score", map[string]http.Handler{post: http.HandlerFunc(s.controlScore)})
	handle(m, "/sim/stats", map[string]http.Handler{get: http.HandlerFunc(s.controlStats)})
	handle(m, "/sim/faults", map[string]http.Handler{
		post: http.HandlerFunc(s.controlSetFaults),
		del:  http.HandlerFunc(s.controlClearFaults),
	})
	noRoute(m)
	return m
}

// statusBody is what a status change takes, from the control API and the
// flow page alike.
type statusBody struct {
	Status string `json:"onboardingStatus"`
}

// scoreBody is what a score change takes: the outcome, in "status".
type scoreBody struct {
	Outcome string `json:"status"`
}

// decodeChange reads a change's body strictly into v, or answers 400 and
// returns false.
func decodeChange(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeBody(w, r, v, true); err != nil {
		writeError(w, r, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

func (s *Simulator) controlStatus(w http.ResponseWriter, r *http.Request) {
	var body statusBody
	if decodeChange(w, r, &body) {
		s.answerChange(w, r, s.SetStatus(r.PathValue("id"), body.Status))
	}
}

func (s *Simulator) controlScore(w http.ResponseWriter, r *http.Request) {
	var body scoreBody
	if decodeChange(w, r, &body) {
		s.answerChange(w, r, s.SetScore(r.PathValue("id"), body.Outcome))
	}
}

// answerChange maps the error of a change, from the control API or the
// flow page, to its answer.
func (s *Simulator) answerChange(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrUnknownInterview):
		writeError(w, r, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrFlowExpired):
		writeError(w, r, http.StatusGone, err.Error())
	default:
		writeError(w, r, http.StatusBadRequest, err.Error())
	}
}

func (s *Simulator) controlStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Simulator) controlSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeChange(w, r, &f) {
		return
	}
	if err := f.validate(); err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	s.SetFaults(f)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) controlClearFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

// StartOptions are what a POST /omni/start asked for.
type StartOptions struct {
	ConfigurationID    string          `json:"configurationId"`
	CountryCode        string          `json:"countryCode"`
	Language           string          `json:"language"`
	ExternalCustomerID string          `json:"externalCustomerId,omitempty"`
	RedirectionURL     string          `json:"redirectionUrl,omitempty"`
	CustomFields       json.RawMessage `json:"customFields,omitempty"`
}

// SessionInfo is what the Simulator knows of a session, for tests.
type SessionInfo struct {
	InterviewID      string       `json:"interviewId"`
	OnboardingStatus string       `json:"onboardingStatus"`
	Start            StartOptions `json:"start"`
	Deleted          bool         `json:"deleted"`
	Expired          bool         `json:"expired"`
}

// Session returns what the Simulator knows of an interview.
func (s *Simulator) Session(interviewID string) (SessionInfo, bool) {
	iv, ok := s.lookup(interviewID)
	if !ok {
		return SessionInfo{}, false
	}
	return SessionInfo{InterviewID: iv.id, OnboardingStatus: iv.status, Start: iv.start, Deleted: iv.deleted, Expired: iv.expired}, true
}

// Delete makes the upstream forget an interview: from now on its reads
// answer 404, by session token and by admin id alike.
func (s *Simulator) Delete(interviewID string) error {
	return s.update(interviewID, func(iv *interview) error { iv.deleted = true; return nil })
}

// Expire makes the interview's session token stop working: reads with it
// answer 401 (admin reads still work).
func (s *Simulator) Expire(interviewID string) error {
	return s.update(interviewID, func(iv *interview) error { iv.expired = true; return nil })
}

func (s *Simulator) controlSession(w http.ResponseWriter, r *http.Request) {
	info, ok := s.Session(r.PathValue("id"))
	if !ok {
		writeError(w, r, http.StatusNotFound, ErrUnknownInterview.Error())
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Simulator) controlDelete(w http.ResponseWriter, r *http.Request) {
	s.answerChange(w, r, s.Delete(r.PathValue("id")))
}

func (s *Simulator) controlExpire(w http.ResponseWriter, r *http.Request) {
	s.answerChange(w, r, s.Expire(r.PathValue("id")))
}
