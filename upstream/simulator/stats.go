package simulator

import "net/http"

// op names an upstream API call for Stats.
type op int

const (
	opStart op = iota
	opOnboardingURL
	opStatus
	opScore
	opLogIn
	opFinish
)

// Stats counts the upstream API calls the Simulator received, faulted and
// refused ones included, and what it did on its own: webhooks and flow
// timeouts. StatusByInterview counts status calls per interview id, for
// calls that name a known interview (by admin id or session token).
type Stats struct {
	Start             int64            `json:"start"` // new sessions and resumed ones
	OnboardingURL     int64            `json:"onboarding_url"`
	Status            int64            `json:"status"`
	Score             int64            `json:"score"`
	LogIn             int64            `json:"log_in"` // admin log-ins (POST /executive/log-in)
	Finish            int64            `json:"finish"` // GET /omni/finish-status
	StatusByInterview map[string]int64 `json:"status_by_interview"`
	// StatusNoToken counts the status calls (within Status) that carried
	// no token at all. The upstream refuses them with 401 before looking
	// anything up, and so does the Simulator, after the faults in force
	// for calls about no interview; the gateway's readiness probe is one.
	StatusNoToken int64 `json:"status_no_token"`
	// StatusReads and Probes split Status: the reads of an interview's
	// status (with a token: what the shared pollers cost, per interview in
	// StatusByInterview), and the calls without one (the gateways'
	// readiness probes, StatusNoToken again).
	StatusReads int64 `json:"status_reads"`
	Probes      int64 `json:"probes"`
	// CallsWithoutAPIKey counts the upstream API calls, of every route,
	// that carried no x-api-key header, whether or not the route needs one.
	CallsWithoutAPIKey int64 `json:"calls_without_api_key"`
	// MaxStatusInFlight is the most status calls about one interview that
	// were ever in flight at once: a gateway that shares its reads keeps
	// it at 1.
	MaxStatusInFlight int64 `json:"max_status_in_flight"`
	// Webhooks counts the status changes announced to the webhook URL:
	// their first calls, made in the order of the changes, whatever the
	// answer.
	Webhooks int64 `json:"webhooks"`
	// WebhooksDelivered counts the webhook calls that succeeded (200 with
	// a JSON body, or 204), first calls and retries alike.
	WebhooksDelivered int64 `json:"webhooks_delivered"`
	// WebhookRetries counts the retry calls of failed webhook calls.
	WebhookRetries int64 `json:"webhook_retries"`
	// WebhooksFailed counts the changes given up on: failed on the first
	// call and on every retry, or not retried because too many were
	// already waiting. Changes still waiting for a retry are in none of
	// Delivered and Failed.
	WebhooksFailed int64 `json:"webhooks_failed"`
	// WebhookTokens counts the OAuth access tokens fetched for webhooks.
	WebhookTokens int64 `json:"webhook_tokens"`
	// FlowTimeouts counts the sessions the flow timeout set to EXPIRED.
	FlowTimeouts int64 `json:"flow_timeouts"`
}

// countWebhook counts a webhook call: a first call (first) or a retry,
// and whether it succeeded.
func (s *Simulator) countWebhook(first, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if first {
		s.stats.Webhooks++
	} else {
		s.stats.WebhookRetries++
	}
	if ok {
		s.stats.WebhooksDelivered++
	}
}

func (s *Simulator) countWebhookFailed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.WebhooksFailed++
}

func (s *Simulator) countWebhookToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.WebhookTokens++
}

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.StatusReads, st.Probes = st.Status-st.StatusNoToken, st.StatusNoToken
	st.StatusByInterview = make(map[string]int64, len(s.stats.StatusByInterview))
	for id, n := range s.stats.StatusByInterview {
		st.StatusByInterview[id] = n
	}
	return st
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
	case opFinish:
		s.stats.Finish++
	}
	if r.Header.Get("x-api-key") == "" {
		s.stats.CallsWithoutAPIKey++
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
