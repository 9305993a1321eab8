package simulator

import (
	"encoding/json"
	"errors"
	"net/http"
)

// The control API lets tests and the flow page drive interviews. It takes no
// credentials: the Simulator is never the real upstream.

func (s *Simulator) controlStatus(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status string `json:"onboardingStatus"`
	}
	if err := decodeBody(w, r, &body, true); err != nil {
		writeError(w, r, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	s.answerControl(w, r, s.SetStatus(r.PathValue("id"), body.Status))
}

func (s *Simulator) controlScore(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status string `json:"status"`
	}
	if err := decodeBody(w, r, &body, true); err != nil {
		writeError(w, r, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	s.answerControl(w, r, s.SetScore(r.PathValue("id"), body.Status))
}

// answerControl maps the error of a control change to its answer.
func (s *Simulator) answerControl(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrUnknownInterview):
		writeError(w, r, http.StatusNotFound, err.Error())
	default:
		writeError(w, r, http.StatusBadRequest, err.Error())
	}
}

func (s *Simulator) controlStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Simulator) controlSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := decodeBody(w, r, &f, true); err != nil {
		writeError(w, r, http.StatusBadRequest, "body: "+err.Error())
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
	return s.update(interviewID, func(iv *interview) { iv.deleted = true })
}

// Expire makes the interview's session token stop working: reads with it
// answer 401 (admin reads still work).
func (s *Simulator) Expire(interviewID string) error {
	return s.update(interviewID, func(iv *interview) { iv.expired = true })
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
	s.answerControl(w, r, s.Delete(r.PathValue("id")))
}

func (s *Simulator) controlExpire(w http.ResponseWriter, r *http.Request) {
	s.answerControl(w, r, s.Expire(r.PathValue("id")))
}
