package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/internal/upstreamsse"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/rediscluster"
	"github.com/pushgate/pushgate/public"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// SimulatorAPIKey is the API key the gateway and its built-in simulator
// share.
const SimulatorAPIKey = "built-in-simulator-key"

// Config is everything a gateway is built from. The zero value of every
// field selects its default; the fields of the packages' own configs that
// wire the parts together (loggers, metrics, the cluster, the upstream)
// are set by New.
type Config struct {
	// Upstream is the onboarding API. An empty BaseURL runs the built-in
	// simulator on Listeners.Simulator instead, with its own key, and the
	// flow "pushgate-sim-flow" when neither FlowID nor HTTP.Flows names
	// one. FlowID becomes the first of HTTP.Flows when those are set;
	// else HTTP.Flows becomes FlowID alone.
	Upstream upstream.Config
	// Simulator tunes the built-in simulator; unused with an upstream.
	Simulator SimulatorConfig
	// FlowOrigins are the origins of the flow pages the page frames, or
	// "*" alone for any (see sse.Config.FlowOrigins). Empty means the
	// simulator's public URL, or the upstream's origin (with a warning:
	// the flow pages may live elsewhere).
	FlowOrigins []string
	// Secret signs the browsers' tokens (at least 16 bytes). Empty picks a
	// random one, with a warning: tokens then die with the process.
	Secret string
	// PreviousSecret is the secret before the last rotation; the tokens
	// it signed verify until PreviousSecretUntil, an absolute time, so a
	// restart (or a crash loop) never extends it. Required with
	// PreviousSecret.
	PreviousSecret      string
	PreviousSecretUntil time.Time
	// TokenTTL is the lifetime of browser tokens. Zero means 1h. An
	// interview nobody watches is remembered as long when Poller.Retention
	// is zero; the cluster's retention follows Poller.Retention when zero.
	TokenTTL time.Duration
	// Redis turns on cluster mode when its URL is set. New sets its Secret
	// and PreviousSecret, which seal the session tokens stored in Redis,
	// from Secret and PreviousSecret.
	Redis rediscluster.Config
	// Relay forwards the upstream's webhooks and the sessions' events to
	// the integrator's backend (see package relay); off without URLs. New
	// sets its Queue (shared in Redis with Redis.URL, else on disk in
	// Relay.Dir, else in memory), Scorer, Metrics and Logger.
	Relay relay.Config
	// Poller, Broker and HTTP tune the parts. Poller.CallTimeout defaults
	// to Upstream.Timeout, HTTP.RequestTimeout to twice that, HTTP.Page to
	// the embedded page, and HTTP.WebhookSecret, with the simulator's
	// webhooks on, to a random secret.
	Poller poller.Config
	Broker sse.BrokerConfig
	HTTP   sse.Config
	// MaxUpstreamCallsPerSecond is a ceiling on this node's upstream
	// calls: the pollers' status reads (Poller.Ceiling, which New sets)
	// and the handler's session starts, onboarding URLs and scores wait on
	// one limiter. Zero (or less) means none.
	MaxUpstreamCallsPerSecond float64
	// MaxConnections caps the open connections of the gateway's listener;
	// those over it are answered 503. Zero means no cap.
	MaxConnections int
	// MaxConnectionsPerClient caps the open connections from one client
	// address (an IPv6 client's /64; HTTP.TrustedProxies are exempt);
	// those over it are answered 429. Zero means no cap.
	MaxConnectionsPerClient int
	// MaxConnectionsPerClient56 caps the open connections of one IPv6 /56,
	// all its /64s together (see sse.Limits.PerClient56). Zero means twice
	// MaxConnectionsPerClient; negative means no cap.
	MaxConnectionsPerClient56 int
	// ReadHeaderTimeout is the time a client has to send its request
	// headers. Zero means 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request (under load, the connection caps close idle ones
	// sooner: see sse.Limits.IdleUnderLoad). Zero means 120s.
	IdleTimeout time.Duration
	// DrainDelay is how long /readyz answers 503 before Serve ends the
	// streams at shutdown; ShutdownGrace bounds the whole shutdown (zero
	// means 10s).
	DrainDelay    time.Duration
	ShutdownGrace time.Duration
	// TLS serves the gateway's listener over HTTPS and HTTP/2 when its
	// files are set; the metrics listener and the simulator stay plain
	// HTTP. Zero serves plain HTTP.
	TLS TLSConfig
	// Build names this build in pushgate_build_info. Zero means unknown.
	Build Build
	// Logger receives everything the parts log. Nil means slog.Default().
	Logger *slog.Logger
}

// SimulatorConfig tunes the built-in simulator.
type SimulatorConfig struct {
	// PublicURL is where browsers reach the simulator. Empty means its
	// listener's address.
	PublicURL string
	// Faults are injected from the start, as POST /sim/faults takes them.
	Faults string
	// ControlToken (at least 16 bytes) opens the control API (/sim/...) to
	// requests with "Authorization: Bearer <ControlToken>" when the
	// simulator listens beyond loopback. Empty leaves it off there; on
	// loopback it answers any program (never a web page: see
	// upstream/simulator's access.go).
	ControlToken string
	// Order is the order the flow page sets statuses in
	// (simulator.OrderSteps, the default, or simulator.OrderIncode).
	Order string
	// Webhooks makes the simulator push every change to the gateway's
	// webhook, as the upstream does once configured.
	Webhooks bool
	// WebhookAuth is how those calls are authenticated, as the upstream
	// can be set up: WebhookAuthPath (no header, the secret in the URL's
	// path), WebhookAuthBearer (a static bearer secret), WebhookAuthOAuth
	// (client credentials at /webhooks/token, then the access token) or
	// WebhookAuthHeader (the dashboard's static custom header). Empty
	// means OAuth when HTTP.WebhookClientID is set, else the custom header
	// when HTTP.WebhookHeaderName is, else the path. Secrets, headers and
	// client credentials left empty are made up at random.
	WebhookAuth string
	// WebhookRetryScale multiplies the waits between the retries of a
	// failed webhook call (the upstream's: 5 retries, 30s then x2.5 each).
	// Zero means 1; negative is refused.
	WebhookRetryScale float64
	// FlowTimeout sets EXPIRED on a session whose flow has not ended this
	// long after its start, as the upstream's flow timeout. Zero means
	// none; negative is refused.
	FlowTimeout time.Duration
}

// Ways the built-in simulator authenticates its webhook calls.
const (
	WebhookAuthPath   = "path"
	WebhookAuthBearer = "bearer"
	WebhookAuthOAuth  = "oauth"
	WebhookAuthHeader = "header"
)

// Listeners are the bound sockets a gateway serves.
type Listeners struct {
	Gateway   net.Listener // required: the page, the API and the streams
	Simulator net.Listener // the built-in simulator; required without an upstream
	// Metrics, when set, serves /metrics, /healthz and /readyz apart from
	// the gateway's listener, which then answers /metrics 404.
	Metrics net.Listener
}

// Listen binds the gateway's address and, when simAddr is not empty, the
// built-in simulator's ("127.0.0.1:0" picks a free loopback port).
func Listen(addr, simAddr string) (Listeners, error) {
	gw, err := net.Listen("tcp", addr)
	if err != nil {
		return Listeners{}, fmt.Errorf("gateway listener: %w", err)
	}
	ls := Listeners{Gateway: gw}
	if simAddr != "" {
		if ls.Simulator, err = net.Listen("tcp", simAddr); err != nil {
			gw.Close()
			return Listeners{}, fmt.Errorf("simulator listener: %w", err)
		}
	}
	return ls, nil
}

// Gateway is a built pushgate. Its parts are exported for the tests and
// tools that drive one; Serve runs it.
type Gateway struct {
	Handler   *sse.Handler
	Broker    *sse.Broker
	Statuses  *poller.Manager
	Tokens    *sse.Tokens
	Metrics   *prometheus.Registry
	Simulator *simulator.Simulator // the built-in simulator; nil with an upstream
	Relay     *relay.Relay         // nil without Config.Relay.URLs
	URL       string               // where a local browser opens the page
	SimURL    string               // the simulator's public URL; "" with an upstream
	// UpstreamURL and FlowOrigins are those in use, after defaults.
	UpstreamURL string
	FlowOrigins []string

	cfg       Config
	log       *slog.Logger
	ls        Listeners
	listener  net.Listener       // ls.Gateway under the connection cap
	certs     *certReloader      // the TLS certificate; nil serving plain HTTP
	client    *upstream.Client   // the upstream, or the built-in simulator over HTTP
	cluster   *rediscluster.Node // nil for a single node
	verdicts  verdicts           // the relay's Scorer: the Handler, once built
	ceiling   *rate.Limiter      // every upstream call waits on it; nil without -max-upstream-rate
	serving   sync.WaitGroup     // the servers' Serve calls
	serveErrs chan error         // a server that stopped on its own
	closers   []closer           // undo what New built; Close runs them in reverse order
	closeOnce sync.Once
	// shutdownBy ends the grace period of Serve's shutdown; zero until then.
	shutdownBy time.Time
}

// New builds a gateway on ls from cfg. With no upstream it starts serving
// the built-in simulator at once; the rest is served by Serve. Close (or
// Serve's shutdown) releases everything New started.
func New(cfg Config, ls Listeners) (g *Gateway, err error) {
	if ls.Gateway == nil || (cfg.Upstream.BaseURL == "" && ls.Simulator == nil) {
		return nil, errors.New("gateway: a gateway listener, and without an upstream a simulator listener, are required")
	}
	switch cfg.Simulator.WebhookAuth {
	case "", WebhookAuthPath, WebhookAuthBearer, WebhookAuthOAuth, WebhookAuthHeader:
	default:
		return nil, fmt.Errorf("gateway: simulator webhook auth %q: want path, bearer, oauth or header", cfg.Simulator.WebhookAuth)
	}
	if cfg.Simulator.Order != "" && simulator.Path(cfg.Simulator.Order) == nil {
		return nil, fmt.Errorf("gateway: simulator order %q: want %s or %s", cfg.Simulator.Order, simulator.OrderSteps, simulator.OrderIncode)
	}
	if err := cfg.TLS.check(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	scheme := "http://"
	if cfg.TLS.CertFile != "" {
		scheme = "https://"
	}
	g = &Gateway{cfg: cfg, log: cfg.Logger, ls: ls, URL: scheme + reachable(ls.Gateway.Addr().String()), serveErrs: make(chan error, 3)}
	defer func(g *Gateway) { // this one: a failed New returns a nil g
		if err != nil {
			g.Close()
		}
	}(g)
	g.Metrics = prometheus.NewRegistry()
	g.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), cfg.Build.collector())
	if cfg.TLS.CertFile != "" {
		if g.certs, err = newCertReloader(cfg.TLS, g.Metrics, g.log); err != nil {
			return nil, err
		}
		g.onClose("TLS certificate", g.certs.close)
	}
	if err := g.newUpstream(); err != nil {
		return nil, err
	}
	if g.Tokens, err = newTokens(cfg, g.log); err != nil {
		return nil, err
	}
	if cfg.Upstream.BaseURL != "" && !cfg.HTTP.BackendSessionsOnly {
		g.log.Warn("-public-sessions is on with a real upstream: anyone who reaches /onboarding-url can start paid sessions; in production set -public-sessions=false and start sessions from your backend (POST /v1/sessions)")
	}
	if err := g.newCluster(); err != nil {
		return nil, err
	}
	if err := g.newRelay(); err != nil {
		return nil, err
	}
	if err := g.newStatuses(); err != nil {
		return nil, err
	}
	if err := g.newHandler(); err != nil {
		return nil, err
	}
	g.listener = ls.Gateway
	if cfg.MaxConnections > 0 || cfg.MaxConnectionsPerClient > 0 || cfg.MaxConnectionsPerClient56 > 0 {
		lim := sse.Limits{Max: cfg.MaxConnections, PerClient: cfg.MaxConnectionsPerClient, PerClient56: cfg.MaxConnectionsPerClient56, Exempt: cfg.HTTP.TrustedProxies}
		if g.listener, err = sse.LimitListener(ls.Gateway, lim, g.Metrics); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = time.Hour
	}
	if c.Upstream.Timeout == 0 {
		c.Upstream.Timeout = 5 * time.Second
	}
	if c.Poller.CallTimeout == 0 {
		c.Poller.CallTimeout = c.Upstream.Timeout
	}
	if c.Poller.Retention == 0 {
		c.Poller.Retention = c.TokenTTL
	}
	if c.Redis.Retention == 0 {
		c.Redis.Retention = c.Poller.Retention
	}
	if c.HTTP.RequestTimeout == 0 {
		c.HTTP.RequestTimeout = 2 * c.Upstream.Timeout
	}
	if c.HTTP.Page == nil {
		c.HTTP.Page = public.Files
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
}

// newTokens makes the browsers' token issuer, with the previous secret
// accepted for its grace period.
func newTokens(cfg Config, log *slog.Logger) (*sse.Tokens, error) {
	secret := []byte(cfg.Secret)
	if len(secret) == 0 {
		secret = []byte(randomSecret())
		log.Warn("-secret not set; using a random one: tokens will not survive a restart or verify on other nodes")
	}
	tokens, err := sse.NewTokens(secret, cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	if cfg.PreviousSecret != "" {
		if cfg.PreviousSecretUntil.IsZero() {
			return nil, errors.New("gateway: PreviousSecret needs PreviousSecretUntil, when its tokens stop verifying")
		}
		if !time.Now().Before(cfg.PreviousSecretUntil) {
			log.Warn("-previous-secret-until has passed: tokens of the previous secret no longer verify", "until", cfg.PreviousSecretUntil)
		}
		if err := tokens.AcceptPrevious([]byte(cfg.PreviousSecret), cfg.PreviousSecretUntil); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// newCluster joins the Redis cluster when one is configured.
func (g *Gateway) newCluster() error {
	if g.cfg.Redis.URL == "" {
		return nil
	}
	rc := g.cfg.Redis
	rc.Metrics, rc.Logger = g.Metrics, g.log
	// The session tokens stored in Redis are sealed under the secret the
	// browser tokens are signed with: every node has it (no random one
	// here: rediscluster refuses an empty secret).
	rc.Secret, rc.PreviousSecret = []byte(g.cfg.Secret), []byte(g.cfg.PreviousSecret)
	node, err := rediscluster.New(rc)
	if err != nil {
		return err
	}
	g.cluster = node
	g.onClose("cluster", node.Close) // after the pollers: they release their leases
	shape, _ := rc.Address().Shape()
	g.log.Info("cluster mode", "redis", redactURL(rc.URL), "shape", shape, "tls", strings.HasPrefix(rc.URL, "rediss://"), "node", node.ID())
	return nil
}

// newStatuses starts the broker and the poller that feeds it.
func (g *Gateway) newStatuses() error {
	bc := g.cfg.Broker
	bc.Metrics, bc.Logger = g.Metrics, g.log
	broker, err := sse.NewBroker(bc)
	if err != nil {
		return err
	}
	g.Broker = broker
	g.onClose("broker", broker.Close)
	pc := g.cfg.Poller
	pc.Metrics, pc.Logger = g.Metrics, g.log
	if g.cfg.MaxUpstreamCallsPerSecond > 0 {
		// One ceiling for every upstream call: status reads, and the
		// session starts, onboarding URLs and scores of newHandler.
		g.ceiling = poller.NewCeiling(g.cfg.MaxUpstreamCallsPerSecond)
	}
	pc.Ceiling = g.ceiling
	if g.cluster != nil {
		pc.Cluster = g.cluster
	}
	if g.Relay != nil {
		pc.Observer = g.Relay
	}
	if g.Statuses, err = poller.New(g.client, broker, pc); err != nil {
		return err
	}
	g.onClose("pollers", g.Statuses.Close)
	return nil
}

// newHandler builds the HTTP surface.
func (g *Gateway) newHandler() error {
	hc := g.cfg.HTTP
	hc.Upstream, hc.Statuses, hc.Broker, hc.Tokens = upstreamsse.Sessions{Client: g.client, Ceiling: g.ceiling}, g.Statuses, g.Broker, g.Tokens
	hc.FlowOrigins, hc.Metrics, hc.Logger = g.FlowOrigins, g.Metrics, g.log
	if g.ls.Metrics == nil {
		hc.MetricsHandler = promhttp.HandlerFor(g.Metrics, promhttp.HandlerOpts{})
	}
	if g.Relay != nil {
		hc.Relay = g.Relay
	}
	h, err := sse.New(hc)
	if err != nil {
		return err
	}
	g.Handler = h
	g.verdicts.h.Store(h)
	g.onClose("streams", h.Drain)
	return nil
}

// metricsHandler serves the metrics listener: /metrics, and the Handler's
// /healthz and /readyz.
func (g *Gateway) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.Metrics, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", g.Handler)
	mux.Handle("/readyz", g.Handler)
	return mux
}

// randomSecret returns 32 random bytes, hex-encoded.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
