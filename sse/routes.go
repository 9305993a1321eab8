package sse

import (
	"context"
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
)

// Handler is the browser-facing HTTP surface: the page, the session API and
// the SSE streams.
type Handler struct {
	cfg         Config
	log         *handlerLog
	router      *mux.Router
	sessions    *sessions
	index       *index                  // the page's index.html; nil without a Page
	assets      map[string]http.Handler // the browser client's built routes, by path
	limits      *rateLimits             // of /onboarding-url, per client address
	apiLimits   *rateLimits             // of the server API, per API token
	nodeLimit   *rateLimits             // of /onboarding-url, for the whole node
	scoreLimits *rateLimits             // of /fetch-score, per browser token
	apiTokens   apiTokens
	cors        cors
	metrics     *handlerMetrics
	drain       drain                  // refuses work once draining, counts the work in flight
	unready     atomic.Bool            // /readyz answers 503
	readyState  atomic.Pointer[string] // /readyz's last answer, to log its changes
	headers     map[string]string      // security headers on every answer

	// webhookFailures counts wrong webhook credentials per client address
	// (blocked, then spend): failures only, so the upstream's own calls
	// never wait on it.
	webhookFailures *rateLimits
}

// webhookSecretPath is the prefix of the webhook route whose last segment
// is the secret: it is never logged.
const webhookSecretPath = "/webhooks/onboarding-status/"

// New returns a Handler serving cfg.
func New(cfg Config) (*Handler, error) {
	err := cfg.setDefaults()
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:         cfg,
		log:         &handlerLog{Logger: cfg.Logger, refusals: newRefusalLog(time.Minute)}, // refusals are sampled
		headers:     securityHeaders(cfg.FlowOrigins, cfg.FrameAncestors, cfg.IframePermissions),
		limits:      newRateLimits(cfg.SessionsPerMinute, cfg.SessionBurst),
		apiLimits:   newRateLimits(cfg.APIRequestsPerMinute, cfg.APIBurst),
		nodeLimit:   newRateLimits(cfg.NodeSessionsPerMinute, cfg.NodeSessionBurst),
		scoreLimits: newRateLimits(cfg.ScoreReadsPerMinute, cfg.ScoreBurst),
		apiTokens:   newAPITokens(cfg.APITokens),
		cors:        cors{origins: cfg.AllowedOrigins},
	}
	h.webhookFailures = newRateLimits(cfg.WebhookFailuresPerMinute, cfg.WebhookFailureBurst)
	if h.metrics, err = newHandlerMetrics(cfg.Metrics, h); err != nil {
		return nil, err
	}
	h.sessions = &sessions{upstream: cfg.Upstream, statuses: cfg.Statuses, tokens: cfg.Tokens, timeout: cfg.RequestTimeout,
		flowOrigins: cfg.FlowOrigins, log: cfg.Logger, metrics: h.metrics, cache: newScoreCache(scoreTTL, maxScores, maxScoreBytes)}
	if cfg.Page != nil {
		if h.index, err = newIndex(cfg.Page, iframeAllow(cfg.FlowOrigins, cfg.IframePermissions)); err != nil {
			return nil, err
		}
		if h.assets, err = clientAssets(cfg.Page); err != nil {
			return nil, err
		}
	}
	h.router = h.routes()
	return h, nil
}

func (h *Handler) routes() *mux.Router {
	r := mux.NewRouter().SkipClean(true) // odd paths get a JSON 404, not a redirect
	r.HandleFunc("/onboarding-url", h.sameSite(h.onboardingURL)).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/v1/sessions", h.serverAPI(h.createSession)).Methods(http.MethodPost)
	r.HandleFunc("/v1/sessions/import", h.serverAPI(h.importSession)).Methods(http.MethodPost)
	r.HandleFunc("/v1/sessions/{interviewId}", h.serverAPI(h.getSession)).Methods(http.MethodGet)
	if h.cfg.Relay != nil {
		r.HandleFunc("/v1/relay/failed", h.serverAPI(h.relayFailed)).Methods(http.MethodGet)
		r.HandleFunc("/v1/relay/failed/{id}/redeliver", h.serverAPI(h.relayRedeliver)).Methods(http.MethodPost)
	}
	r.HandleFunc("/events", h.sameSite(h.events)).Methods(http.MethodGet)
	r.HandleFunc("/onboarding-status", h.sameSite(h.onboardingStatus)).Methods(http.MethodGet)
	r.HandleFunc("/fetch-score", h.sameSite(h.fetchScore)).Methods(http.MethodGet)
	r.HandleFunc("/healthz", h.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", h.readyz).Methods(http.MethodGet, http.MethodHead)
	if h.cfg.WebhookSecret != "" || h.cfg.WebhookClientID != "" || h.cfg.WebhookHeaderName != "" {
		r.HandleFunc("/webhooks/onboarding-status", h.webhook).Methods(http.MethodPost)
	}
	if h.cfg.WebhookSecret != "" {
		r.HandleFunc(webhookSecretPath+"{secret}", h.webhook).Methods(http.MethodPost)
	}
	if h.cfg.WebhookClientID != "" {
		r.HandleFunc("/webhooks/token", h.webhookToken).Methods(http.MethodPost)
	}
	if h.cfg.MetricsHandler != nil {
		r.Handle("/metrics", h.cfg.MetricsHandler).Methods(http.MethodGet)
	}
	r.HandleFunc("/favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }).Methods(http.MethodGet, http.MethodHead)
	if h.cfg.Page != nil {
		files := http.FileServerFS(h.cfg.Page)
		r.Handle("/", h.index).Methods(http.MethodGet, http.MethodHead)
		entries, _ := fs.ReadDir(h.cfg.Page, ".")
		for _, e := range entries {
			if path := "/" + e.Name(); !e.IsDir() && e.Name() != "index.html" && h.assets[path] == nil {
				r.Handle(path, files).Methods(http.MethodGet, http.MethodHead)
			}
		}
		for path, a := range h.assets {
			r.Handle(path, a).Methods(http.MethodGet, http.MethodHead)
		}
	}
	r.Use(nameRoute)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, h.log, errorf(http.StatusNotFound, "no such route")) // not the path: a mistyped webhook URL carries its secret
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(h.methodNotAllowed)
	return r
}

// ServeHTTP guards the request (security headers, CORS, body cap), then
// routes it, counting the answer when metrics are on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.guard(w, r) {
		return
	}
	done, ok := h.drain.admit(r.URL.Path)
	if !ok {
		writeError(w, r, h.log, errDraining)
		return
	}
	defer done()
	if h.metrics == nil {
		h.router.ServeHTTP(w, r)
		return
	}
	h.countRequests(w, r)
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

// Unready turns /readyz to 503 while everything else keeps working, so a
// load balancer stops sending new clients before Drain.
func (h *Handler) Unready() { h.unready.Store(true) }

// Drain turns readiness off, ends the open streams with a randomised retry
// hint, and from then on answers every route that needs the pollers or the
// upstream (streams, sessions, statuses, scores, the server API, webhooks)
// 503 draining with Retry-After, so that clients go to another node; the
// page, health and metrics are still served. Call it before
// http.Server.Shutdown, which would otherwise wait for open streams
// forever.
func (h *Handler) Drain() {
	h.unready.Store(true)
	h.drain.start()
	h.cfg.Broker.Drain()
}

// Drained waits until, after Drain, no request that needs the pollers or
// the upstream is in flight (streams aside: Drain ends them), or ctx
// ends. Stop the pollers after it.
func (h *Handler) Drained(ctx context.Context) error { return h.drain.wait(ctx) }
