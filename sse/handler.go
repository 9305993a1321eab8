package sse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/upstream"
)

// Upstream is what the HTTP API needs of the upstream API besides status
// reads, which go through the poller.
type Upstream interface {
	Start(ctx context.Context, opts upstream.StartOptions) (upstream.Session, error)
	OnboardingURL(ctx context.Context, s upstream.Session) (string, error)
	Score(ctx context.Context, interviewID, sessionToken string) (upstream.Score, error)
}

// Config wires a Handler. Fields marked required must be set.
type Config struct {
	Upstream Upstream        // required
	Statuses *poller.Manager // required; reads and watches statuses
	Broker   *Broker         // required; the Publisher of Statuses
	Tokens   *Tokens         // required
	// FlowOrigin is the origin of the onboarding flow pages shown in the
	// iframe (e.g. "https://demo-onboarding.incodesmile.com"). Required:
	// the page's CSP frames only it, and Permissions-Policy delegates the
	// camera, microphone and geolocation to it alone.
	FlowOrigin string
	// Page is served at "/" (index.html and its assets). Nil serves no page.
	Page fs.FS
	// Ready reports whether the gateway can serve (upstream reachable).
	// Nil means always ready; /readyz also fails while draining.
	Ready func() error
	// Degraded says why the gateway serves in a degraded mode ("" when it
	// does not), e.g. a cluster node polling alone while Redis is out of
	// reach. /readyz shows it and still answers 200: the node serves. Nil
	// means never degraded.
	Degraded func() string
	// AllowedOrigins may call the API and open streams from other origins,
	// with credentials (CORS). Empty grants no other origin.
	AllowedOrigins []string
	// FrameAncestors is the CSP frame-ancestors source list: who may frame
	// the page. Empty means 'self'.
	FrameAncestors string
	// ClientIPHeader names a header a trusted reverse proxy sets to the
	// client's address (X-Forwarded-For, X-Real-IP); its last entry is
	// used. Empty means the peer address is the client. Set it only behind
	// such a proxy: otherwise clients pick their own address.
	ClientIPHeader string
	// SessionsPerMinute limits /onboarding-url, which starts a paid
	// upstream session, per client address; SessionBurst calls may come at
	// once. Zero means 10 per minute and a burst of 5; a negative rate
	// turns the limit off.
	SessionsPerMinute float64
	SessionBurst      int
	// WebhookSecret turns on POST /webhooks/onboarding-status, where the
	// upstream pushes status changes; its calls must carry
	// "Authorization: Bearer <WebhookSecret>". Empty leaves the route off.
	WebhookSecret string
	// WebhookSources, when not empty, are the only client addresses
	// webhook calls are taken from.
	WebhookSources []netip.Prefix
	// Metrics registers the Handler's Prometheus collectors (requests by
	// route and code, rate-limit refusals). Nil records no metrics.
	Metrics prometheus.Registerer
	// MetricsHandler is served at GET /metrics. Nil serves no metrics.
	MetricsHandler http.Handler
	// SecureCookie marks the session cookie Secure even when the request
	// did not arrive over TLS (set it behind a TLS-terminating proxy).
	SecureCookie bool
	// RequestTimeout bounds the upstream work of one non-streaming
	// request. Zero means 10s.
	RequestTimeout time.Duration
	// Logger receives request errors. Nil means slog.Default().
	Logger *slog.Logger
}

// Handler is the browser-facing HTTP surface: the page, the session API and
// the SSE streams.
type Handler struct {
	cfg      Config
	log      *slog.Logger
	router   *mux.Router
	scores   singleflight.Group // upstream score reads, keyed by interview id
	sessions *rateLimits        // of /onboarding-url, per client address
	cors     cors
	metrics  *handlerMetrics
	draining atomic.Bool       // streams refused and ended
	unready  atomic.Bool       // /readyz answers 503
	headers  map[string]string // security headers on every answer
}

// New returns a Handler serving cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Upstream == nil || cfg.Statuses == nil || cfg.Broker == nil || cfg.Tokens == nil {
		return nil, errors.New("sse: Upstream, Statuses, Broker and Tokens are required")
	}
	flow, err := url.Parse(cfg.FlowOrigin)
	if err != nil || (flow.Scheme != "http" && flow.Scheme != "https") || flow.Host == "" || (flow.Path != "" && flow.Path != "/") {
		return nil, fmt.Errorf("sse: FlowOrigin %q is not an origin like https://host[:port]", cfg.FlowOrigin)
	}
	origin := flow.Scheme + "://" + flow.Host
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FrameAncestors == "" {
		cfg.FrameAncestors = "'self'"
	}
	if strings.ContainsAny(cfg.FrameAncestors, ";,\r\n") {
		return nil, fmt.Errorf("sse: FrameAncestors %q must be a space-separated source list", cfg.FrameAncestors)
	}
	if cfg.SessionsPerMinute == 0 {
		cfg.SessionsPerMinute = 10
	}
	if cfg.SessionBurst == 0 {
		cfg.SessionBurst = 5
	}
	for _, o := range cfg.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || o != u.Scheme+"://"+u.Host {
			return nil, fmt.Errorf("sse: allowed origin %q is not an origin like https://host[:port]", o)
		}
	}
	h := &Handler{
		cfg:      cfg,
		log:      cfg.Logger,
		headers:  securityHeaders(origin, cfg.FrameAncestors),
		sessions: newRateLimits(cfg.SessionsPerMinute, cfg.SessionBurst),
		cors:     cors{origins: cfg.AllowedOrigins},
	}
	if h.metrics, err = newHandlerMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	h.router = h.routes()
	return h, nil
}

// securityHeaders are sent on every answer: the page frames only the flow
// origin and delegates the camera, microphone and geolocation to it alone.
func securityHeaders(flowOrigin, frameAncestors string) map[string]string {
	q := strconv.Quote(flowOrigin)
	return map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
			"connect-src 'self'; frame-src " + flowOrigin + "; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors " + frameAncestors,
		"Permissions-Policy":     "camera=(" + q + "), microphone=(" + q + "), geolocation=(" + q + ")",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	}
}

func (h *Handler) routes() *mux.Router {
	r := mux.NewRouter().SkipClean(true) // odd paths get a JSON 404, not a redirect
	r.HandleFunc("/onboarding-url", h.onboardingURL).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/events", h.events).Methods(http.MethodGet)
	r.HandleFunc("/onboarding-status", h.onboardingStatus).Methods(http.MethodGet)
	r.HandleFunc("/fetch-score", h.fetchScore).Methods(http.MethodGet)
	r.HandleFunc("/healthz", h.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", h.readyz).Methods(http.MethodGet, http.MethodHead)
	if h.cfg.WebhookSecret != "" {
		r.HandleFunc("/webhooks/onboarding-status", h.webhook).Methods(http.MethodPost)
	}
	if h.cfg.MetricsHandler != nil {
		r.Handle("/metrics", h.cfg.MetricsHandler).Methods(http.MethodGet)
	}
	r.HandleFunc("/favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }).Methods(http.MethodGet, http.MethodHead)
	if h.cfg.Page != nil {
		files := http.FileServerFS(h.cfg.Page)
		r.Handle("/", files).Methods(http.MethodGet, http.MethodHead)
		entries, _ := fs.ReadDir(h.cfg.Page, ".")
		for _, e := range entries {
			if !e.IsDir() && e.Name() != "index.html" {
				r.Handle("/"+e.Name(), files).Methods(http.MethodGet, http.MethodHead)
			}
		}
	}
	r.Use(nameRoute)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, h.log, errorf(http.StatusNotFound, "no such route: "+req.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(h.methodNotAllowed)
	return r
}

// ServeHTTP sets the security headers, answers CORS preflight requests,
// caps the request body and routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range h.headers {
		w.Header().Set(k, v)
	}
	if preflight, allowed := h.cors.apply(w, r); preflight {
		if !allowed {
			writeError(w, r, h.log, errorf(http.StatusForbidden, "origin "+r.Header.Get("Origin")+" may not call this API"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.ContentLength > maxBody {
		writeError(w, r, h.log, errorf(http.StatusRequestEntityTooLarge, "request body too large: no route takes more than "+strconv.Itoa(maxBody)+" bytes"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if h.metrics == nil {
		h.router.ServeHTTP(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w, route: "unmatched"}
	h.router.ServeHTTP(rec, r)
	h.metrics.requests.WithLabelValues(rec.route, strconv.Itoa(rec.status())).Inc()
}

// nameRoute is router middleware (it runs once a route matched): it puts
// the route's path template on the statusRecorder, for metric labels that
// stay few whatever paths clients send.
func nameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*statusRecorder); ok {
			if tpl, err := mux.CurrentRoute(r).GetPathTemplate(); err == nil {
				rec.route = tpl
			}
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status code of an answer. Unwrap keeps
// http.ResponseController (flushes, write deadlines) working through it.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	route string // the matched route's path template
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unready turns /readyz to 503 while everything else keeps working, so a
// load balancer stops sending new clients before Drain.
func (h *Handler) Unready() { h.unready.Store(true) }

// Drain turns readiness off, refuses new streams and ends the open ones
// with a randomised retry hint. Call it before http.Server.Shutdown, which
// would otherwise wait for open streams forever.
func (h *Handler) Drain() {
	h.unready.Store(true)
	h.draining.Store(true)
	h.cfg.Broker.Drain()
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if h.router.Match(probe, &match) && match.MatchErr == nil {
			allow = append(allow, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, r, h.log, errorf(http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+strings.Join(allow, " or ")))
}

// onboardingURL starts an upstream session, registers it with the poller
// and hands the browser the flow URL and a token (also as a cookie scoped
// to this interview, so several sessions in several tabs all keep working).
func (h *Handler) onboardingURL(w http.ResponseWriter, r *http.Request) {
	if wait := h.sessions.wait(clientAddr(r, h.cfg.ClientIPHeader)); wait > 0 {
		if h.metrics != nil {
			h.metrics.rateLimited.WithLabelValues("/onboarding-url").Inc()
		}
		writeError(w, r, h.log, &Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Message: "too many new sessions from this address; try again in " + strconv.FormatInt(retrySeconds(wait), 10) + "s"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	sess, err := h.cfg.Upstream.Start(ctx, upstream.StartOptions{})
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if !validInterviewID(sess.InterviewID) {
		writeError(w, r, h.log, fmt.Errorf("start answered interview id %q: %w", sess.InterviewID, upstream.ErrMalformed))
		return
	}
	flowURL, err := h.cfg.Upstream.OnboardingURL(ctx, sess)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	h.cfg.Statuses.Register(sess.InterviewID, sess.Token)
	tok, exp := h.cfg.Tokens.Issue(sess.InterviewID)
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(sess.InterviewID),
		Value:    tok,
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(time.Until(exp).Seconds()),
		HttpOnly: true,
		Secure:   h.cfg.SecureCookie || r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusOK, map[string]string{"url": flowURL, "interviewId": sess.InterviewID, "token": tok})
}

// events serves one SSE client. See conn for how the snapshot, dedupe,
// deadlines and the end of the stream work.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	id, err := h.authorized(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	last, err := lastEventID(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if h.draining.Load() {
		writeError(w, r, h.log, errDraining)
		return
	}
	u, err := h.cfg.Statuses.Current(r.Context(), id)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if last > u.Seq {
		last = 0 // ids from before this gateway's state began: resend the current status
	}
	if u.Finished() && last == u.Seq {
		w.WriteHeader(http.StatusNoContent) // the client saw the end: EventSource stops
		return
	}
	unwatch := h.cfg.Statuses.Watch(id)
	defer unwatch()

	// Without write deadlines one stuck client would freeze its stream
	// (r3labs blocks on it): refuse to stream through a ResponseWriter that
	// cannot set them, e.g. under middleware that hides the connection.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
		writeError(w, r, h.log, fmt.Errorf("sse: the ResponseWriter cannot set write deadlines: %w", err))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := newConn(w, h.cfg.Broker, h.cfg.Statuses, id, clientAddr(r, h.cfg.ClientIPHeader), last, cancel)
	if err := h.cfg.Broker.join(c); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	defer h.cfg.Broker.leave(c)

	// The handler owns r: rather than a copy of its headers (1.4 KiB per
	// open stream), r3labs gets them without Last-Event-ID, which conn
	// handles and r3labs would replay by.
	r.Header.Del("Last-Event-ID")
	sr := r.WithContext(ctx)
	sr.URL = &url.URL{Path: r.URL.Path, RawQuery: "stream=" + url.QueryEscape(id)}
	h.cfg.Broker.srv.ServeHTTP(c, sr)
	c.close()
}

func (h *Handler) onboardingStatus(w http.ResponseWriter, r *http.Request) {
	_, u, err := h.interviewStatus(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"onboardingStatus": u.Status})
}

// interviewStatus authorizes a non-streaming request and reads its
// interview's status through the poller's shared path.
func (h *Handler) interviewStatus(r *http.Request) (string, poller.Update, error) {
	id, err := h.authorized(r)
	if err != nil {
		return "", poller.Update{}, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	u, err := h.cfg.Statuses.Current(ctx, id)
	return id, u, err
}

// fetchScore answers the score once the flow finished. Concurrent requests
// for one interview share one upstream call.
func (h *Handler) fetchScore(w http.ResponseWriter, r *http.Request) {
	id, u, err := h.interviewStatus(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if !u.Finished() {
		writeError(w, r, h.log, errorf(http.StatusConflict, "onboarding not finished (status "+u.Status+"); the score is available after ONBOARDING_FINISHED"))
		return
	}
	ch := h.scores.DoChan(id, func() (any, error) {
		sctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
		defer cancel()
		return h.cfg.Upstream.Score(sctx, id, h.cfg.Statuses.SessionToken(id))
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-r.Context().Done():
		res.Err = r.Context().Err()
	}
	if res.Err != nil {
		writeError(w, r, h.log, res.Err)
		return
	}
	score := res.Val.(upstream.Score)
	status := score.Status
	if status == "" {
		status = "UNKNOWN"
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": status, "score": score.Raw})
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.unready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "shutting down"})
		return
	}
	if h.cfg.Ready != nil {
		if err := h.cfg.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "not ready: " + err.Error()})
			return
		}
	}
	body := map[string]string{"status": "ready"}
	if h.cfg.Degraded != nil {
		if why := h.cfg.Degraded(); why != "" {
			body["status"], body["degraded"] = "degraded", why
		}
	}
	writeJSON(w, http.StatusOK, body)
}

var interviewIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validInterviewID(id string) bool { return interviewIDPattern.MatchString(id) }

// authorized validates the interviewId parameter and the caller's token for
// it, and returns the id.
func (h *Handler) authorized(r *http.Request) (string, error) {
	ids := r.URL.Query()["interviewId"]
	if len(ids) > 1 {
		return "", errorf(http.StatusBadRequest, "interviewId given more than once")
	}
	if len(ids) == 0 || ids[0] == "" {
		return "", errorf(http.StatusBadRequest, "interviewId query parameter is required")
	}
	id := ids[0]
	if !validInterviewID(id) {
		return "", errorf(http.StatusBadRequest, "interviewId must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -")
	}
	return id, h.cfg.Tokens.Verify(requestToken(r, id), id)
}

// requestToken finds the caller's token: X-Token, then Authorization:
// Bearer, then the interview's cookie. Tokens in the URL are not accepted.
func requestToken(r *http.Request, interviewID string) string {
	if t := r.Header.Get("X-Token"); t != "" {
		return t
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	if c, err := r.Cookie(cookieName(interviewID)); err == nil {
		return c.Value
	}
	return ""
}

// cookieName scopes the session cookie to one interview.
func cookieName(interviewID string) string { return "pushgate_" + interviewID }

// lastEventID parses the Last-Event-ID header a reconnecting EventSource
// sends (0 when absent).
func lastEventID(r *http.Request) (uint64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "Last-Event-ID must be a non-negative integer")
	}
	return n, nil
}
