package main

import (
	"encoding/json"
	"slices"
	"sync"
)

// store keeps what the backend knows of each interview. It stands for a
// table in a real app (where the webhook-id is a unique key). Its zero
// value is empty and ready.
type store struct {
	mu   sync.Mutex         // protects byID and seen
	byID map[string]*record // by interview id
	seen map[string]bool    // webhook-ids recorded
}

// record is one interview, as the backend holds it.
type record struct {
	InterviewID string          `json:"interviewId"`
	CustomerID  string          `json:"customerId,omitempty"` // whom the backend started it for
	Language    string          `json:"language,omitempty"`
	Verdict     string          `json:"verdict,omitempty"` // the score's overall.status
	Score       json.RawMessage `json:"score,omitempty"`   // the full score, from GET /v1/sessions/{id}
	Events      []event         `json:"events"`            // the relay's deliveries, in arrival order
}

// event is one relayed delivery: the fields of Incode's webhooks and of
// pushgate's session events that the backend keeps.
type event struct {
	ID               string `json:"id"`             // webhook-id
	Kind             string `json:"kind"`           // Pushgate-Event-Kind: upstream, status or ended
	Type             string `json:"type,omitempty"` // session.status, session.ended; none from Incode
	InterviewID      string `json:"interviewId"`
	OnboardingStatus string `json:"onboardingStatus,omitempty"`
	Reason           string `json:"reason,omitempty"`  // session.ended: finished, expired, not_found
	Verdict          string `json:"verdict,omitempty"` // session.ended: OK, WARN, FAIL; none when null
	ExternalID       string `json:"externalId,omitempty"`
}

// recordLocked returns id's record, made when missing; s.mu is held.
func (s *store) recordLocked(id string) *record {
	if s.byID == nil {
		s.byID = map[string]*record{}
		s.seen = map[string]bool{}
	}
	rec := s.byID[id]
	if rec == nil {
		rec = &record{InterviewID: id, Events: []event{}}
		s.byID[id] = rec
	}
	return rec
}

// started records an interview the backend started for a customer.
func (s *store) started(id, customer, language string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.recordLocked(id)
	rec.CustomerID, rec.Language = customer, language
}

// owner returns the customer the backend started id for; "" when it did
// not start it.
func (s *store) owner(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.byID[id]; ok {
		return rec.CustomerID
	}
	return ""
}

// scored keeps an interview's verdict and full score.
func (s *store) scored(id, verdict string, score json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.recordLocked(id)
	rec.Verdict, rec.Score = verdict, score
}

// add records a relayed event, and reports false for a webhook-id
// recorded before (a redelivery).
func (s *store) add(e event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.recordLocked(e.InterviewID)
	if s.seen[e.ID] {
		return false
	}
	s.seen[e.ID] = true
	rec.Events = append(rec.Events, e)
	return true
}

// get returns a copy of id's record.
func (s *store) get(id string) (record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byID[id]
	if !ok {
		return record{}, false
	}
	c := *rec
	c.Events = slices.Clone(rec.Events)
	return c, true
}
