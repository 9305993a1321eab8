package simulator

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ErrUnknownInterview is returned for an interview id the Simulator never started.
var ErrUnknownInterview = errors.New("simulator: unknown interview")

// Score outcomes a test or the flow page can choose.
const (
	OutcomeOK   = "OK"
	OutcomeWarn = "WARN"
	OutcomeFail = "FAIL"
)

const defaultStepDelay = 1500 * time.Millisecond

// Config configures a Simulator. The zero value works.
type Config struct {
	// APIKey is the x-api-key that /omni/... calls must carry. Empty accepts
	// any non-empty key.
	APIKey string
	// AdminToken is an admin token the admin endpoints accept in
	// X-Incode-Hardware-Id, forever.
	AdminToken string
	// AdminEmail and AdminPassword are the executive credentials
	// POST /executive/log-in takes; each log-in answers a new admin token
	// that the admin endpoints accept for AdminTokenTTL (zero: 24h, as the
	// upstream does), then refuse with 401. Empty refuses every log-in.
	AdminEmail    string
	AdminPassword string
	AdminTokenTTL time.Duration
	// Order is the order in which the flow page sets statuses: OrderSteps
	// (the default: one status per step, along Flow) or OrderIncode (the
	// orders Incode's flows send: a second ID, government validation after
	// the ID checks, post-processing after the face check).
	Order string
	// PublicURL is the base URL browsers reach the Simulator at; flow URLs are
	// built on it. Empty means "http://" + the request's Host.
	PublicURL string
	// StepDelay is the auto-advance step time of the flow page. Zero means 1.5s.
	StepDelay time.Duration
	// WebhookURL receives a POST for every status change, as the upstream's
	// webhook does: {"interviewId","onboardingStatus","clientId","flowId"}
	// (flowId is the session's configurationId), and "externalId" when the
	// session has one. A call succeeds on 200 with a JSON body, or 204;
	// a failed one is retried on the upstream's schedule (see
	// WebhookRetryScale), on its own, without holding later changes back.
	// Empty sends none. Close stops the sender. How the calls are
	// authenticated follows the upstream's two setups, and a third:
	//   - WebhookTokenURL set: OAuth 2.0 client credentials. The sender
	//     POSTs grant_type=client_credentials there with Basic
	//     WebhookClientID:WebhookClientSecret, sends the access token as
	//     a bearer until it expires, then fetches a new one;
	//   - else WebhookSecret set: "Authorization: Bearer <WebhookSecret>";
	//   - else no Authorization header at all (the upstream without OAuth;
	//     a secret may sit in the URL's path).
	// WebhookHeaders are sent on every call besides, as the static custom
	// headers of the upstream's dashboard (Configuration -> Webhooks).
	WebhookURL          string
	WebhookSecret       string
	WebhookTokenURL     string
	WebhookClientID     string
	WebhookClientSecret string
	WebhookHeaders      http.Header
	// WebhookTLS is the TLS config of the webhook calls to an https://
	// WebhookURL (and WebhookTokenURL). Nil means Go's default: the
	// system's roots.
	WebhookTLS *tls.Config
	// WebhookRetryScale multiplies the waits between the retries of a
	// failed webhook call. The upstream retries up to 5 times, the first
	// 30s after the failure and each wait 2.5 times the one before (30s,
	// 75s, 187.5s, 468.75s, 1171.875s); 0.001 makes them 30ms, 75ms, ...
	// for tests. Zero (or less) means 1.
	WebhookRetryScale float64
	// FlowTimeout is how long after its start a session whose flow has not
	// ended (ONBOARDING_FINISHED or a manual review's outcome) gets status
	// EXPIRED, with its webhook, as the upstream does at its flows'
	// timeout. Zero means none. The control API sets it per session
	// (POST /sim/interviews/{id}/timeout). Close stops the timers.
	FlowTimeout time.Duration
	// Addr is the address the Simulator is served on: its listener's
	// Addr(). On a loopback address the control API (/sim/...) takes every
	// request a program sends to a loopback Host (or PublicURL's host); on
	// any other, and when Addr is nil, only those that carry ControlToken.
	// Who connects does not matter, only where the Simulator listens: a
	// proxy on the same host reaches it over loopback too. Web pages are
	// refused everywhere (see access.go).
	Addr net.Addr
	// ControlToken opens the control API to requests that send
	// "Authorization: Bearer <ControlToken>", wherever the Simulator
	// listens. Empty leaves it off beyond loopback.
	ControlToken string
	// Logger receives a line per session started and per control change.
	// Nil discards them, so tests stay quiet.
	Logger *slog.Logger
}

// Simulator serves the upstream onboarding API, a control API (/sim/...) for
// tests, and the flow page browsers show in an iframe. It is safe for
// concurrent use.
type Simulator struct {
	apiKey     string
	adminToken string
	control    controlAccess
	executive  adminLogin
	order      string
	publicURL  string
	stepDelay  time.Duration
	log        *slog.Logger
	router     *http.ServeMux
	page       *template.Template
	webhooks   *webhooks // nil without a WebhookURL
	closeOnce  sync.Once
	// flowTimeout is Config.FlowTimeout: each new session's.
	flowTimeout time.Duration
	// timeouts counts the flow-timeout callbacks running; Close waits for them.
	timeouts sync.WaitGroup

	mu          sync.Mutex            // protects byID, byToken, adminTokens, inFlight, faults, stats, closed
	closed      bool                  // Close has run: no flow timeout is armed or fires any more
	adminTokens map[string]time.Time  // admin tokens from log-ins, and when each expires
	inFlight    map[string]int64      // status calls in flight, by interview id
	byID        map[string]*interview // by interview id
	byToken     map[string]*interview // by session token
	faults      Faults
	stats       Stats
}

// interview is one session; its fields are guarded by Simulator.mu.
type interview struct {
	id      string
	token   string
	flowKey string // in its onboarding URL: the flow page's only credential
	code    string
	status  string
	outcome string
	start   StartOptions // what the start asked for
	deleted bool         // the upstream no longer knows it: reads answer 404
	expired bool         // its session token no longer works: session reads answer 401
	started time.Time    // when it started; its flow timeout counts from here
	// deadline is when its flow times out (zero: never), and timer the
	// timer that fires then (nil without one).
	deadline time.Time
	timer    *time.Timer
}

// New returns a Simulator.
func New(cfg Config) *Simulator {
	s := &Simulator{
		apiKey:      cfg.APIKey,
		adminToken:  cfg.AdminToken,
		control:     newControlAccess(cfg.Addr, cfg.ControlToken, cfg.PublicURL),
		executive:   adminLogin{email: cfg.AdminEmail, password: cfg.AdminPassword, ttl: cfg.AdminTokenTTL},
		order:       cfg.Order,
		adminTokens: make(map[string]time.Time),
		publicURL:   strings.TrimRight(cfg.PublicURL, "/"),
		stepDelay:   cfg.StepDelay,
		flowTimeout: max(cfg.FlowTimeout, 0),
		log:         cfg.Logger,
		page:        flowTemplate,
		byID:        make(map[string]*interview),
		byToken:     make(map[string]*interview),
		inFlight:    make(map[string]int64),
		stats:       Stats{StatusByInterview: make(map[string]int64)},
	}
	if s.stepDelay <= 0 {
		s.stepDelay = defaultStepDelay
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.executive.ttl <= 0 {
		s.executive.ttl = 24 * time.Hour
	}
	if Path(s.order) == nil {
		s.order = OrderSteps
	}
	if cfg.WebhookURL != "" {
		s.webhooks = newWebhooks(cfg, s)
	}
	s.router = s.routes()
	if cfg.Addr != nil {
		s.log.Info("simulator: control API", "answers", s.control.who(), "addr", s.control.addr)
	}
	return s
}

// Close stops the flow timeouts and the webhook sender, and waits for
// them. The Simulator keeps serving; its sessions no longer time out, and
// changes are no longer announced.
func (s *Simulator) Close() {
	s.closeOnce.Do(func() {
		s.stopTimeouts()
		if s.webhooks != nil {
			s.webhooks.close()
		}
	})
}

// ServeHTTP routes a request to the upstream API, the control API or the
// flow page.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

// routes builds the router: the upstream API, the flow page, and the
// control API under /sim/, behind its access check. Each path also has a
// method-less pattern that answers 405, and other paths answer 404, both
// as the upstream's JSON errors.
func (s *Simulator) routes() *http.ServeMux {
	m := http.NewServeMux()
	get, post := http.MethodGet, http.MethodPost
	handle(m, "/omni/start", map[string]http.Handler{post: s.api(opStart, s.withAPIKey(s.start))})
	handle(m, "/executive/log-in", map[string]http.Handler{post: s.api(opLogIn, s.withAPIKey(s.logIn))})
	handle(m, "/0/omni/onboarding-url", map[string]http.Handler{get: s.api(opOnboardingURL, s.session(s.onboardingURL))})
	handle(m, "/omni/onboarding-url", map[string]http.Handler{get: s.api(opOnboardingURL, s.withAPIKey(s.session(s.onboardingURL)))})
	handle(m, "/0/omni/get/onboarding/status", map[string]http.Handler{get: s.api(opStatus, s.session(s.status))})
	handle(m, "/omni/get/onboarding/status", map[string]http.Handler{get: s.api(opStatus, s.withAPIKey(s.admin(s.status)))})
	handle(m, "/0/omni/get/score", map[string]http.Handler{get: s.api(opScore, s.session(s.score))})
	handle(m, "/omni/get/score", map[string]http.Handler{get: s.api(opScore, s.sessionOrAdmin(s.score))})
	handle(m, "/omni/finish-status", map[string]http.Handler{get: s.api(opFinish, s.withAPIKey(s.session(s.finish)))})
	s.flowRoutes(m)
	m.Handle("/sim/", s.control.guard(s.controlRoutes()))
	noRoute(m)
	return m
}

// handle registers each method's handler for path, and a method-less
// pattern that answers 405.
func handle(m *http.ServeMux, path string, byMethod map[string]http.Handler) {
	for method, h := range byMethod {
		m.Handle(method+" "+path, h)
	}
	m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusMethodNotAllowed, "method not allowed")
	})
}

// noRoute answers 404 to every path m has no pattern for.
func noRoute(m *http.ServeMux) {
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "no such route")
	})
}

// SetStatus sets the onboardingStatus of an interview, and announces a
// change to the webhook. Any non-empty string is accepted (EXPIRED
// included), so tests can send statuses the upstream may add later.
func (s *Simulator) SetStatus(interviewID, status string) error {
	if status == "" {
		return errors.New("simulator: empty status")
	}
	err := s.update(interviewID, func(iv *interview) error {
		s.setStatusLocked(iv, status)
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("simulator: status set", "interview", interviewID, "status", status)
	return nil
}

// setStatusLocked sets the status of iv and announces a change to the
// webhook. Caller holds s.mu: changes are queued under it, so first
// webhook calls go out in the order of the changes.
func (s *Simulator) setStatusLocked(iv *interview, status string) {
	if iv.status != status && s.webhooks != nil {
		s.webhooks.announce(webhookCall{InterviewID: iv.id, OnboardingStatus: status, ExternalID: iv.start.ExternalCustomerID,
			ClientID: clientID, FlowID: iv.start.ConfigurationID}, s)
	}
	iv.status = status
}

// SetScore sets the outcome (OK, WARN or FAIL) every section of the
// interview's score reports.
func (s *Simulator) SetScore(interviewID, outcome string) error {
	switch outcome {
	case OutcomeOK, OutcomeWarn, OutcomeFail:
	default:
		return fmt.Errorf("simulator: outcome %q is not OK, WARN or FAIL", outcome)
	}
	if err := s.update(interviewID, func(iv *interview) error { iv.outcome = outcome; return nil }); err != nil {
		return err
	}
	s.log.Info("simulator: score set", "interview", interviewID, "outcome", outcome)
	return nil
}

// update changes a known interview under the lock; change may refuse
// with an error.
func (s *Simulator) update(interviewID string, change func(*interview) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	iv, ok := s.byID[interviewID]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownInterview, interviewID)
	}
	return change(iv)
}

// newInterview creates and registers a session in state UNKNOWN with an OK
// score, and arms its flow timeout. It returns a copy.
func (s *Simulator) newInterview(opts StartOptions) interview {
	iv := &interview{
		id:      randomHex(12),
		token:   randomToken(),
		flowKey: randomHex(16), // 128 bits
		code:    strings.ToUpper(randomHex(3)),
		status:  StatusUnknown,
		outcome: OutcomeOK,
		start:   opts,
		started: time.Now(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[iv.id] = iv
	s.byToken[iv.token] = iv
	s.armTimeoutLocked(iv, s.flowTimeout)
	return *iv
}

// lookup returns a copy of the interview with the id, or false.
func (s *Simulator) lookup(id string) (interview, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	iv, ok := s.byID[id]
	if !ok {
		return interview{}, false
	}
	return *iv, true
}

// randomHex returns 2n lowercase hex characters; 12 bytes make an id shaped
// like a Mongo ObjectId.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
