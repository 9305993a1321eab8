package simulator

import (
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
