package sse

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/mux"
)

// The server API, under /v1, is for the integrator's backend: it decides
// who gets a session, hands the page {interviewId, token, url}, and reads
// the full score. It takes only "Authorization: Bearer <API token>":
// browser tokens and cookies never work here, browsers get no CORS grant
// for it, and it has its own rate ceiling per API token.

// apiPrefix is where the server API's routes live.
const apiPrefix = "/v1/"

// Limits of the fields of POST /v1/sessions.
const (
	maxExternalIDLen  = 256
	maxRedirectionLen = 2048
)

// flowPattern is what a configured flow (Config.Flows) looks like:
// printable ASCII but space and comma, as the -flow-id list holds them.
var flowPattern = regexp.MustCompile(`^[!-+\--~]{1,128}$`)

// apiTokens checks API tokens in constant time: every configured token is
// compared, whichever matches, and the comparison is of fixed-size hashes,
// so timing tells neither a token's length nor its prefix.
type apiTokens struct {
	sums [][sha256.Size]byte
}

func newAPITokens(tokens []string) apiTokens {
	a := apiTokens{sums: make([][sha256.Size]byte, len(tokens))}
	for i, t := range tokens {
		a.sums[i] = sha256.Sum256([]byte(t))
	}
	return a
}

// match returns the index of the configured token equal to token, or -1.
func (a apiTokens) match(token string) int {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.sums {
		if subtle.ConstantTimeCompare(sum[:], a.sums[i][:]) == 1 {
			found = i
		}
	}
	return found
}

// serverAPI wraps a /v1 handler: the server API must be on, the caller
// must present an API token, and that token must be under its rate
// ceiling.
func (h *Handler) serverAPI(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(h.apiTokens.sums) == 0 {
			writeError(w, r, h.log, errorf(http.StatusNotFound, "the server API is off: start pushgate with -api-token"))
			return
		}
		bearer, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pushgate"`)
			writeError(w, r, h.log, errorf(http.StatusUnauthorized, "missing API token: send Authorization: Bearer <api token>"))
			return
		}
		i := h.apiTokens.match(bearer)
		if i < 0 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pushgate", error="invalid_token"`)
			writeError(w, r, h.log, errorf(http.StatusUnauthorized, "invalid API token"))
			return
		}
		if wait := h.apiLimits.wait("api-token-" + strconv.Itoa(i)); wait > 0 {
			h.metrics.rateLimit(apiPrefix)
			writeError(w, r, h.log, &Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
				Message: "too many server API requests with this API token; try again in " + strconv.FormatInt(retrySeconds(wait), 10) + "s"})
			return
		}
		next(w, r)
	}
}

// createRequest is the body of POST /v1/sessions; every field is optional.
type createRequest struct {
	ExternalCustomerID string         `json:"externalCustomerId"`
	Language           string         `json:"language"`
	RedirectionURL     string         `json:"redirectionUrl"`
	CustomFields       map[string]any `json:"customFields"`
	ConfigurationID    *string        `json:"configurationId"` // nil (absent or null): the default flow
}

// sessionCreated is the answer of POST /v1/sessions and of its import:
// what the backend hands the page.
type sessionCreated struct {
	InterviewID string `json:"interviewId"`
	URL         string `json:"url,omitempty"`
	Token       string `json:"token"`
	ExpiresAt   string `json:"expiresAt"`
}

// createSession starts an upstream session for the backend.
func (h *Handler) createSession(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decodeBody(r, &req, true); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	opts, err := h.startOptions(req)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	s, err := h.sessions.start(r.Context(), opts)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if h.cfg.Relay != nil {
		h.cfg.Relay.Remember(s.InterviewID, opts.ExternalCustomerID) // the relay's session events carry it
	}
	created(w, s)
}

// startOptions checks the fields of a createRequest.
func (h *Handler) startOptions(req createRequest) (StartOptions, error) {
	switch {
	case len(req.ExternalCustomerID) > maxExternalIDLen || !printable(req.ExternalCustomerID):
		return StartOptions{}, errorf(http.StatusBadRequest, "externalCustomerId must be at most "+strconv.Itoa(maxExternalIDLen)+" bytes of printable text")
	case req.RedirectionURL != "" && !httpURL(req.RedirectionURL, maxRedirectionLen):
		return StartOptions{}, errorf(http.StatusBadRequest, "redirectionUrl must be an absolute http or https URL of at most "+strconv.Itoa(maxRedirectionLen)+" bytes")
	}
	language, err := pickLanguage(req.Language, h.cfg.Languages)
	if err != nil {
		return StartOptions{}, err
	}
	if req.Language != "" && primaryLanguage(language) != primaryLanguage(req.Language) {
		return StartOptions{}, errorf(http.StatusBadRequest, "language "+req.Language+" is not offered; this gateway offers "+strings.Join(h.cfg.Languages, ", ")+" (-languages)")
	}
	flow, err := h.pickFlow(req.ConfigurationID)
	if err != nil {
		return StartOptions{}, err
	}
	return StartOptions{Language: language, ExternalCustomerID: req.ExternalCustomerID, RedirectionURL: req.RedirectionURL,
		CustomFields: req.CustomFields, ConfigurationID: flow}, nil
}

// pickFlow chooses the flow a backend's session runs: the configured flow
// it names, or the default when it names none. The route is the
// backend's, behind an API token, so the refusal lists the flows.
func (h *Handler) pickFlow(asked *string) (string, error) {
	switch {
	case asked == nil:
		return h.defaultFlow(), nil
	case slices.Contains(h.cfg.Flows, *asked):
		return *asked, nil
	case len(h.cfg.Flows) == 0:
		return "", errorf(http.StatusBadRequest, "configurationId names a flow, but this gateway is configured with none to choose from (-flow-id): leave it out").coded("unknown_flow")
	}
	return "", errorf(http.StatusBadRequest, "configurationId is not a flow of this gateway; it offers "+strings.Join(h.cfg.Flows, ", ")+" (-flow-id)").coded("unknown_flow")
}

// defaultFlow is the flow of sessions that name none, browsers' included:
// the first configured, or "" for the upstream's own default.
func (h *Handler) defaultFlow() string {
	if len(h.cfg.Flows) == 0 {
		return ""
	}
	return h.cfg.Flows[0]
}

// checkFlows checks the flows (Config.Flows), naming the field by
// name(field) (see Config.Check): each must be well formed, and listed
// once.
func checkFlows(flows []string, name func(field string) string) error {
	for i, f := range flows {
		switch {
		case strings.ContainsAny(f, " \t"):
			return fmt.Errorf("%s: flow %q holds a space; separate flows with commas", name("Flows"), f)
		case !flowPattern.MatchString(f):
			return fmt.Errorf("%s: flow %q must be 1 to 128 bytes of printable ASCII without spaces or commas", name("Flows"), f)
		case slices.Contains(flows[:i], f):
			return fmt.Errorf("%s: flow %q is listed twice", name("Flows"), f)
		}
	}
	return nil
}

// importRequest is the body of POST /v1/sessions/import.
type importRequest struct {
	InterviewID  string `json:"interviewId"`
	SessionToken string `json:"sessionToken"`
	URL          string `json:"url"`
}

// importSession takes a session the backend started with the upstream
// itself, once the upstream has taken its session token.
func (h *Handler) importSession(w http.ResponseWriter, r *http.Request) {
	var req importRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	switch {
	case !validInterviewID(req.InterviewID):
		writeError(w, r, h.log, errorf(http.StatusBadRequest, "interviewId is required: 1 to 64 characters of A-Z, a-z, 0-9, _ or -"))
		return
	case req.SessionToken == "" || len(req.SessionToken) > maxSessionTokenLen || !printable(req.SessionToken):
		writeError(w, r, h.log, errorf(http.StatusBadRequest, "sessionToken is required: the token the upstream's start answered, at most "+strconv.Itoa(maxSessionTokenLen)+" bytes"))
		return
	case req.URL != "" && !httpURL(req.URL, maxRedirectionLen):
		writeError(w, r, h.log, errorf(http.StatusBadRequest, "url must be an absolute http or https URL (the session's onboarding URL)"))
		return
	}
	s, err := h.sessions.adopt(r.Context(), req.InterviewID, req.SessionToken, req.URL)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	created(w, s)
}

// sessionState is the answer of GET /v1/sessions/{interviewId}.
type sessionState struct {
	InterviewID      string          `json:"interviewId"`
	OnboardingStatus string          `json:"onboardingStatus"`
	Seq              uint64          `json:"seq"`
	Finished         bool            `json:"finished"`
	Score            json.RawMessage `json:"score,omitempty"` // the upstream's whole score, once finished
}

// getSession answers an interview's status and, once its flow finished,
// the upstream's whole score: the backend's view, where the browser only
// ever gets the verdict.
func (h *Handler) getSession(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["interviewId"]
	if !validInterviewID(id) {
		writeError(w, r, h.log, errorf(http.StatusBadRequest, "interviewId must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -"))
		return
	}
	if h.cfg.Statuses.SessionToken(id) == "" {
		writeError(w, r, h.log, errorf(http.StatusNotFound, "no session with this interviewId: start it with POST /v1/sessions or import it with POST /v1/sessions/import"))
		return
	}
	u, err := h.sessions.status(r.Context(), id)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	state := sessionState{InterviewID: id, OnboardingStatus: u.Status, Seq: u.Seq, Finished: u.Finished()}
	if state.Finished {
		score, err := h.sessions.score(r.Context(), id)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		state.Score = score.Raw
	}
	writeJSON(w, http.StatusOK, state)
}

// created answers 201 with what the page needs of a new session.
func created(w http.ResponseWriter, s browserSession) {
	w.Header().Set("Location", apiPrefix+"sessions/"+s.InterviewID)
	writeJSON(w, http.StatusCreated, sessionCreated{InterviewID: s.InterviewID, URL: s.FlowURL, Token: s.Token, ExpiresAt: s.Expires.UTC().Format(time.RFC3339)})
}

// decodeBody decodes a server API request body into v: one JSON object
// (see decodeObject), with no field v does not have. An empty body is an
// empty object when emptyOK, however it is sent; otherwise it is refused.
func decodeBody(r *http.Request, v any, emptyOK bool) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(body) == 0 && emptyOK {
		return nil
	}
	if !jsonContentType(r) {
		return errorf(http.StatusUnsupportedMediaType, "the request body must be JSON, sent with Content-Type: application/json")
	}
	return decodeObject(body, v, "the request body", nil)
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// httpURL reports whether raw is an absolute http(s) URL with a host, of
// at most maxLen bytes.
func httpURL(raw string, maxLen int) bool {
	if len(raw) > maxLen || !printable(raw) {
		return false
	}
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
