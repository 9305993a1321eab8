package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// StartOptions are the optional fields of Start.
type StartOptions struct {
	// Language of the flow, e.g. en-US, es-ES, pt-BR. Empty means en-US.
	Language string
	// ExternalCustomerID is the customer's own id of the person; the
	// upstream echoes it as externalId in webhooks.
	ExternalCustomerID string
	// RedirectionURL is where the flow sends the person when it ends.
	RedirectionURL string
	// CustomFields are stored with the session, as a JSON object.
	CustomFields map[string]any
	// ConfigurationID is the flow the session runs, sent as is. Empty
	// means Config.FlowID.
	ConfigurationID string
}

// Session is the upstream's answer to Start. Token is a secret: it reads the
// session's results.
type Session struct {
	InterviewID     string
	Token           string
	InterviewCode   string
	FlowType        string
	ClientID        string
	Env             string
	ExistingSession bool
}

// sessionJSON is Session as the upstream spells it; the two convert.
type sessionJSON struct {
	InterviewID     string `json:"interviewId"`
	Token           string `json:"token"`
	InterviewCode   string `json:"interviewCode"`
	FlowType        string `json:"flowType"`
	ClientID        string `json:"clientId"`
	Env             string `json:"env"`
	ExistingSession bool   `json:"existingSession"`
}

// Start opens an onboarding session (POST /omni/start).
func (c *Client) Start(ctx context.Context, opts StartOptions) (_ Session, err error) {
	defer c.metrics.observe("start", time.Now(), &err)
	if opts.Language == "" {
		opts.Language = "en-US"
	}
	if opts.ConfigurationID == "" {
		opts.ConfigurationID = c.flowID
	}
	body := struct {
		ConfigurationID    string         `json:"configurationId"`
		CountryCode        string         `json:"countryCode"`
		Language           string         `json:"language"`
		ExternalCustomerID string         `json:"externalCustomerId,omitempty"`
		RedirectionURL     string         `json:"redirectionUrl,omitempty"`
		CustomFields       map[string]any `json:"customFields,omitempty"`
	}{opts.ConfigurationID, "ALL", opts.Language, opts.ExternalCustomerID, opts.RedirectionURL, opts.CustomFields}
	rq := request{op: "start", method: http.MethodPost, path: "/omni/start", body: body}
	code, raw, err := c.do(ctx, rq)
	if err != nil {
		return Session{}, err
	}
	s, err := decodeSession(raw)
	if err != nil {
		return Session{}, malformed(rq.op, code, err)
	}
	return s, nil
}

// OnboardingURL returns the URL of the flow page for s
// (GET /0/omni/onboarding-url).
func (c *Client) OnboardingURL(ctx context.Context, s Session) (_ string, err error) {
	defer c.metrics.observe("onboarding-url", time.Now(), &err)
	const op = "onboarding-url"
	if s.Token == "" {
		return "", &Error{Op: op, Kind: ErrNoSession}
	}
	q := url.Values{}
	if s.ClientID != "" {
		q.Set("clientId", s.ClientID)
	}
	rq := request{op: op, method: http.MethodGet, path: "/0/omni/onboarding-url", query: q, token: s.Token, session: true}
	code, raw, err := c.do(ctx, rq)
	if err != nil {
		return "", err
	}
	u, err := decodeOnboardingURL(raw)
	if err != nil {
		return "", malformed(op, code, err)
	}
	return u, nil
}

// Status returns the interview's onboardingStatus as the upstream spells it;
// unknown values pass through. In admin mode (see Config.AdminToken) it
// reads by interviewID and ignores sessionToken; otherwise it reads with
// sessionToken and ignores interviewID, and an empty sessionToken is
// ErrNoSession without a call.
func (c *Client) Status(ctx context.Context, interviewID, sessionToken string) (_ string, err error) {
	defer c.metrics.observe("status", time.Now(), &err)
	code, raw, err := c.read(ctx, "status", "/omni/get/onboarding/status", interviewID, sessionToken)
	if err != nil {
		return "", err
	}
	status, err := decodeStatus(raw)
	if err != nil {
		return "", malformed("status", code, err)
	}
	return status, nil
}

// SessionStatus reads a session's status with its session token on the
// session endpoint, in either mode: it tells whether the upstream takes
// that token. A token it does not know, or no longer takes, is an
// ErrUnauthorized; a deleted session's is an ErrNotFound. The session
// endpoint does not name the interview, so this cannot tell which
// interview the token belongs to.
func (c *Client) SessionStatus(ctx context.Context, sessionToken string) (_ string, err error) {
	defer c.metrics.observe("session_status", time.Now(), &err)
	if sessionToken == "" {
		return "", &Error{Op: "session_status", Kind: ErrNoSession}
	}
	code, raw, err := c.do(ctx, request{op: "session_status", method: http.MethodGet, path: "/0/omni/get/onboarding/status", token: sessionToken, session: true})
	if err != nil {
		return "", err
	}
	status, err := decodeStatus(raw)
	if err != nil {
		return "", malformed("session_status", code, err)
	}
	return status, nil
}

// Score is the upstream's score of an interview.
type Score struct {
	Status string          // overall.status: OK, WARN, FAIL, UNKNOWN...; "" when absent or null
	Raw    json.RawMessage // the whole answer, always a JSON object
}

// Score returns the interview's score; it reads like Status does.
func (c *Client) Score(ctx context.Context, interviewID, sessionToken string) (_ Score, err error) {
	defer c.metrics.observe("score", time.Now(), &err)
	code, raw, err := c.read(ctx, "score", "/omni/get/score", interviewID, sessionToken)
	if err != nil {
		return Score{}, err
	}
	s, err := decodeScore(raw)
	if err != nil {
		return Score{}, malformed("score", code, err)
	}
	return s, nil
}

// read reads one interview: by id on the admin endpoint in admin mode, else
// on the session endpoint ("/0" + path). An admin token the upstream
// refuses (it expired early, or was revoked) is renewed once, when the
// Client logs in by itself, and the read tried again.
func (c *Client) read(ctx context.Context, op, path, interviewID, sessionToken string) (int, []byte, error) {
	if !c.admin.on() {
		if sessionToken == "" {
			return 0, nil, &Error{Op: op, Kind: ErrNoSession}
		}
		return c.do(ctx, request{op: op, method: http.MethodGet, path: "/0" + path, token: sessionToken, session: true})
	}
	if interviewID == "" {
		return 0, nil, &Error{Op: op, Kind: ErrRejected, Message: "no interview id"}
	}
	token, err := c.adminToken(ctx)
	if err != nil {
		return 0, nil, err
	}
	rq := request{op: op, method: http.MethodGet, path: path, query: url.Values{"id": {interviewID}}, token: token}
	code, raw, err := c.do(ctx, rq)
	if errors.Is(err, ErrUnauthorized) && code == http.StatusUnauthorized && c.admin.renews() {
		if rq.token, err = c.renewAdminToken(ctx, token); err != nil {
			return 0, nil, err
		}
		return c.do(ctx, rq)
	}
	return code, raw, err
}
