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

// op names an upstream API call for Stats.
type op int

const (
	opStart op = iota
	opOnboardingURL
	opStatus
	opScore
	opLogIn
)

// Stats counts the upstream API calls the Simulator received, faulted and
// refused ones included. StatusByInterview counts status calls per interview
// id, for calls that name a known interview (by admin id or session token).
type Stats struct {
	Start             int64            `json:"start"`
	OnboardingURL     int64            `json:"onboarding_url"`
	Status            int64            `json:"status"`
	Score             int64            `json:"score"`
	LogIn             int64            `json:"log_in"` // admin log-ins (POST /executive/log-in)
	StatusByInterview map[string]int64 `json:"status_by_interview"`
	// StatusNoToken counts the status calls (within Status) that carried
	// no token at all. The upstream refuses them with 401 before looking
	// anything up, and so does the Simulator, after the faults in force
	// for calls about no interview; the gateway's readiness probe is one.
	StatusNoToken int64 `json:"status_no_token"`
	// MaxStatusInFlight is the most status calls about one interview that
	// were ever in flight at once: a gateway that shares its reads keeps
	// it at 1.
	MaxStatusInFlight int64 `json:"max_status_in_flight"`
	// Webhooks counts the status changes announced to the webhook URL.
	Webhooks int64 `json:"webhooks"`
	// WebhookTokens counts the OAuth access tokens fetched for webhooks.
	WebhookTokens int64 `json:"webhook_tokens"`
}

func (s *Simulator) countWebhookToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.WebhookTokens++
}

func (s *Simulator) countWebhook() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Webhooks++
}

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.StatusByInterview = make(map[string]int64, len(s.stats.StatusByInterview))
	for id, n := range s.stats.StatusByInterview {
		st.StatusByInterview[id] = n
	}
	return st
}

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

// enter and leave track the status calls in flight per interview.
func (s *Simulator) enter(interviewID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[interviewID]++
	s.stats.MaxStatusInFlight = max(s.stats.MaxStatusInFlight, s.inFlight[interviewID])
}

func (s *Simulator) leave(interviewID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight[interviewID]--; s.inFlight[interviewID] == 0 {
		delete(s.inFlight, interviewID)
	}
}

// count records a call and returns the faults in force for it and the
// interview it is about ("" when none is known).
func (s *Simulator) count(o op, r *http.Request) (Faults, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch o {
	case opStart:
		s.stats.Start++
	case opOnboardingURL:
		s.stats.OnboardingURL++
	case opScore:
		s.stats.Score++
	case opStatus:
		s.stats.Status++
		if r.Header.Get("X-Incode-Hardware-Id") == "" {
			s.stats.StatusNoToken++
		}
	case opLogIn:
		s.stats.LogIn++
	}
	id := ""
	iv, ok := s.byID[r.URL.Query().Get("id")]
	if !ok {
		iv, ok = s.byToken[r.Header.Get("X-Incode-Hardware-Id")]
	}
	if ok {
		id = iv.id
	}
	if ok && o == opStatus {
		s.stats.StatusByInterview[id]++
	}
	if !s.faults.applies(id) {
		return Faults{}, id
	}
	return s.faults, id
}

func (s *Simulator) start(w http.ResponseWriter, r *http.Request) {
	if !s.apiKeyOK(r) {
		writeError(w, r, http.StatusForbidden, "invalid or missing x-api-key")
		return
	}
	var body StartOptions
	if err := decodeBody(w, r, &body, false); err != nil {
		writeError(w, r, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if len(body.CustomFields) > 0 && body.CustomFields[0] != '{' {
		writeError(w, r, http.StatusBadRequest, "customFields must be an object")
		return
	}
	iv := s.newInterview(body)
	s.log.Info("simulator: session started", "interview", iv.id, "flow", body.ConfigurationID, "language", body.Language)
	writeJSON(w, http.StatusOK, struct {
		InterviewID     string `json:"interviewId"`
		Token           string `json:"token"`
		InterviewCode   string `json:"interviewCode"`
		FlowType        string `json:"flowType"`
		ClientID        string `json:"clientId"`
		Env             string `json:"env"`
		ExistingSession bool   `json:"existingSession"`
	}{iv.id, iv.token, iv.code, "flow", "sim", "sim", false})
}

// onboardingURL answers the flow page's URL, shaped as the upstream's
// (https://.../flow/...?...): /flow/{id}?key=<flow key>. The same URL comes
// back for the same session, as the upstream's does.
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
		s.mu.Lock()
		iv, ok := s.byToken[r.Header.Get("X-Incode-Hardware-Id")]
		var cp interview
		if ok {
			cp = *iv
		}
		s.mu.Unlock()
		switch {
		case !ok:
			writeError(w, r, http.StatusUnauthorized, "invalid or missing session token")
		case cp.deleted:
			writeError(w, r, http.StatusNotFound, "interview not found")
		case cp.expired:
			writeError(w, r, http.StatusUnauthorized, "session token expired")
		default:
			h(w, r, cp)
		}
	}
}

// admin checks the API key and admin token, then resolves the interview from
// the id query parameter.
func (s *Simulator) admin(h func(http.ResponseWriter, *http.Request, interview)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.apiKeyOK(r) {
			writeError(w, r, http.StatusForbidden, "invalid or missing x-api-key")
			return
		}
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
