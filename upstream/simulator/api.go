package simulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// maxBody caps every request body the Simulator reads.
const maxBody = 64 << 10

// api wraps an upstream API handler: it counts the call, applies the
// faults, then checks the api-version header.
func (s *Simulator) api(o op, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, id := s.count(o, r)
		if o == opStatus && id != "" {
			s.enter(id)
			defer s.leave(id)
		}
		if !applyFaults(w, r, f) {
			return
		}
		if r.Header.Get("api-version") != "1.0" {
			writeError(w, r, http.StatusBadRequest, "api-version header must be 1.0")
			return
		}
		h(w, r)
	})
}

// start opens a session, or resumes the one whose interviewId the body
// names: the same interview and token, with existingSession true and its
// start options as they were. An unknown or deleted interviewId gets 404.
func (s *Simulator) start(w http.ResponseWriter, r *http.Request) {
	var body struct {
		StartOptions
		InterviewID string `json:"interviewId"` // a session to resume
	}
	if err := decodeBody(w, r, &body, false); err != nil {
		writeError(w, r, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if len(body.CustomFields) > 0 && body.CustomFields[0] != '{' {
		writeError(w, r, http.StatusBadRequest, "customFields must be an object")
		return
	}
	if body.InterviewID != "" {
		iv, ok := s.lookup(body.InterviewID)
		if !ok || iv.deleted {
			writeError(w, r, http.StatusNotFound, "interviewId "+strconv.Quote(body.InterviewID)+": no such session to resume")
			return
		}
		s.log.Info("simulator: session resumed", "interview", iv.id)
		writeJSON(w, http.StatusOK, startAnswerOf(iv, true))
		return
	}
	iv := s.newInterview(body.StartOptions)
	s.log.Info("simulator: session started", "interview", iv.id, "flow", body.ConfigurationID, "language", body.Language)
	writeJSON(w, http.StatusOK, startAnswerOf(iv, false))
}

// clientID is the organization the Simulator answers for: the start
// answer's clientId and the webhooks' clientId.
const clientID = "sim"

// startAnswer is what POST /omni/start answers: the fields the upstream's
// answer has that its sample backends read or map.
type startAnswer struct {
	InterviewID     string `json:"interviewId"`
	Token           string `json:"token"`
	InterviewCode   string `json:"interviewCode"`
	FlowType        string `json:"flowType"`
	ClientID        string `json:"clientId"`
	Env             string `json:"env"`
	ExistingSession bool   `json:"existingSession"`
}

func startAnswerOf(iv interview, existing bool) startAnswer {
	return startAnswer{iv.id, iv.token, iv.code, "flow", clientID, "sim", existing}
}

// onboardingURL answers the flow page's URL, shaped as the upstream's
// (https://.../flow/...?...): /flow/{id}?key=<flow key>. The same URL comes
// back for the same session, as the upstream's does. The query parameters
// the sample backends send (clientId, redirectionUrl) are taken and not
// used: the upstream's meaning of them is not published.
func (s *Simulator) onboardingURL(w http.ResponseWriter, r *http.Request, iv interview) {
	base := s.publicURL
	if base == "" {
		base = "http://" + r.Host
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": base + "/flow/" + iv.id + "?key=" + iv.flowKey})
}

func (s *Simulator) status(w http.ResponseWriter, r *http.Request, iv interview) {
	writeJSON(w, http.StatusOK, map[string]string{"onboardingStatus": iv.status})
}

func (s *Simulator) score(w http.ResponseWriter, r *http.Request, iv interview) {
	writeJSON(w, http.StatusOK, scoreFor(iv.outcome))
}

// session resolves the interview from the session token in
// X-Incode-Hardware-Id: 401 for an unknown or expired token, 404 for a
// session the upstream has deleted.
func (s *Simulator) session(h func(http.ResponseWriter, *http.Request, interview)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		iv, ok := s.byTokenOf(r)
		if !ok {
			writeError(w, r, http.StatusUnauthorized, "invalid or missing session token")
			return
		}
		if s.sessionUsable(w, r, iv) {
			h(w, r, iv)
		}
	}
}

// byTokenOf returns a copy of the interview whose session token the
// request carries, or false.
func (s *Simulator) byTokenOf(r *http.Request) (interview, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	iv, ok := s.byToken[r.Header.Get("X-Incode-Hardware-Id")]
	if !ok {
		return interview{}, false
	}
	return *iv, true
}

// sessionUsable answers 404 for a deleted session and 401 for one whose
// token expired, and reports whether the call may go on.
func (s *Simulator) sessionUsable(w http.ResponseWriter, r *http.Request, iv interview) bool {
	switch {
	case iv.deleted:
		writeError(w, r, http.StatusNotFound, "interview not found")
	case iv.expired:
		writeError(w, r, http.StatusUnauthorized, "session token expired")
	default:
		return true
	}
	return false
}

// withAPIKey answers 403 to a call without the API key, before h: each
// upstream API route but the /0/... ones (a session token alone) wants it.
func (s *Simulator) withAPIKey(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.apiKeyOK(r) {
			writeError(w, r, http.StatusForbidden, "invalid or missing x-api-key")
			return
		}
		h(w, r)
	}
}

// sessionOrAdmin takes the API key and either a session token, whose
// interview the id query parameter must name (403 for another one), or an
// admin token, as admin does: the sample backends read scores both ways.
func (s *Simulator) sessionOrAdmin(h func(http.ResponseWriter, *http.Request, interview)) http.HandlerFunc {
	admin := s.admin(h)
	return s.withAPIKey(func(w http.ResponseWriter, r *http.Request) {
		iv, ok := s.byTokenOf(r)
		if !ok {
			admin(w, r)
			return
		}
		switch id := r.URL.Query().Get("id"); {
		case id == "":
			writeError(w, r, http.StatusBadRequest, "missing id")
		case id != iv.id:
			writeError(w, r, http.StatusForbidden, "the session token is not interview "+strconv.Quote(id)+"'s")
		default:
			if s.sessionUsable(w, r, iv) {
				h(w, r, iv)
			}
		}
	})
}

// admin checks the admin token, then resolves the interview from the id
// query parameter. The API key is checked before it (withAPIKey).
func (s *Simulator) admin(h func(http.ResponseWriter, *http.Request, interview)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if msg := s.adminTokenRefused(r.Header.Get("X-Incode-Hardware-Id")); msg != "" {
			writeError(w, r, http.StatusUnauthorized, msg)
			return
		}
		id := r.URL.Query().Get("id")
		if id == "" {
			writeError(w, r, http.StatusBadRequest, "missing id")
			return
		}
		iv, ok := s.lookup(id)
		if !ok || iv.deleted {
			writeError(w, r, http.StatusNotFound, "interview not found")
			return
		}
		h(w, r, iv)
	}
}

func (s *Simulator) apiKeyOK(r *http.Request) bool {
	key := r.Header.Get("x-api-key")
	if key == "" {
		return false
	}
	return s.apiKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.apiKey)) == 1
}

// applyFaults plays f on the request and reports whether the handler should
// still answer.
func applyFaults(w http.ResponseWriter, r *http.Request, f Faults) bool {
	if f.Hang {
		<-r.Context().Done()
		return false
	}
	if f.LatencyMS > 0 {
		t := time.NewTimer(time.Duration(f.LatencyMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		}
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		if f.RetryAfterS > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfterS))
		}
		writeError(w, r, f.Status, "injected fault")
		return false
	}
	if f.MalformedRate > 0 && rand.Float64() < f.MalformedRate {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"onboardingStatus": "ONBOARDING_`)
		return false
	}
	return true
}

// writeError answers the way the upstream does: {timestamp (ms), status,
// error, message, path}, where status is the upstream's own four-digit
// code, not the HTTP one (here the HTTP code times ten: the upstream's
// codes are not published, and a client must not take them for HTTP's).
func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeJSON(w, code, struct {
		Timestamp int64  `json:"timestamp"`
		Status    int    `json:"status"`
		Error     string `json:"error"`
		Message   string `json:"message"`
		Path      string `json:"path"`
	}{time.Now().UnixMilli(), code * 10, http.StatusText(code), msg, r.URL.Path})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads one JSON object of at most maxBody bytes into v; strict
// refuses unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, strict bool) error {
	var raw json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	if raw[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec = json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	return dec.Decode(v)
}
