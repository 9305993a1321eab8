// Command pushgate runs the gateway: the page, the session API and the SSE
// streams, in front of the upstream onboarding API or, when no upstream is
// configured, in front of the built-in simulator on its own listener.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/rediscluster"
	"github.com/pushgate/pushgate/public"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-healthcheck" {
		os.Exit(healthcheck(os.Args[2]))
	}
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushgate:", err)
		os.Exit(2)
	}
	log := newLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log, nil); err != nil {
		log.Error("pushgate stopped", "err", err)
		os.Exit(1)
	}
}

// healthcheck is the container health probe (distroless images have no
// curl): it exits 0 when url answers 200.
func healthcheck(url string) int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		return 1
	}
	return 0
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// simAPIKey is the API key gateway and built-in simulator share.
const simAPIKey = "built-in-simulator-key"

// listeners are the bound sockets of a running gateway; tests pass their own.
type listeners struct {
	gateway net.Listener
	sim     net.Listener // nil with an upstream URL
}

// run wires the packages and serves until ctx ends, then shuts down within
// the grace period. ls may be nil: run then listens on the configured
// addresses.
func run(ctx context.Context, cfg config, log *slog.Logger, ls *listeners) error {
	if ls == nil {
		var err error
		if ls, err = listen(cfg); err != nil {
			return err
		}
	}
	var sim *server           // nil with an upstream URL
	stopWebhooks := func() {} // stops the built-in simulator's webhook calls
	webhookSecret := cfg.webhookSecret
	webhookSources, err := parsePrefixes(cfg.webhookSources)
	if err != nil {
		return err
	}
	upstreamURL, flowOrigin := cfg.upstreamURL, cfg.flowOrigin
	apiKey, flowID := cfg.apiKey, cfg.flowID
	if ls.sim != nil {
		publicURL := cfg.simPublicURL
		if publicURL == "" {
			publicURL = "http://" + reachable(ls.sim.Addr().String())
		}
		simCfg := simulator.Config{APIKey: simAPIKey, AdminToken: cfg.adminToken, PublicURL: publicURL, Logger: log.With("component", "simulator")}
		if cfg.simWebhooks {
			// The simulator pushes every change to the gateway's webhook,
			// as the upstream does once its dashboard names the URL.
			if webhookSecret == "" {
				webhookSecret = randomSecret()
			}
			simCfg.WebhookURL = "http://" + loopback(ls.gateway.Addr().String()) + "/webhooks/onboarding-status"
			simCfg.WebhookSecret = webhookSecret
		}
		simulated := simulator.New(simCfg)
		defer simulated.Close()
		stopWebhooks = simulated.Close
		if cfg.simFaults != "" {
			f, err := simulator.ParseFaults(cfg.simFaults)
			if err != nil {
				return err
			}
			simulated.SetFaults(f)
		}
		sim = newServer(simulated, ls.sim, cfg.readHeaderTimeout, log)
		upstreamURL, apiKey, flowID = "http://"+ls.sim.Addr().String(), simAPIKey, "pushgate-sim-flow"
		if flowOrigin == "" {
			flowOrigin = publicURL
		}
	}
	if flowOrigin == "" {
		flowOrigin = upstreamURL
		log.Warn("-flow-origin not set; framing only the upstream's origin, which may not be where the flow pages live", "origin", flowOrigin)
	}
	flowOrigin = origin(flowOrigin)

	secret := []byte(cfg.secret)
	if len(secret) == 0 {
		secret = []byte(randomSecret())
		log.Warn("-secret not set; using a random one: tokens will not survive a restart or verify on other nodes")
	}
	tokens, err := sse.NewTokens(secret, cfg.tokenTTL)
	if err != nil {
		return err
	}
	if cfg.previousSecret != "" {
		grace := cfg.previousSecretGrace
		if grace == 0 {
			grace = cfg.tokenTTL
		}
		if err := tokens.AcceptPrevious([]byte(cfg.previousSecret), time.Now().Add(grace)); err != nil {
			return err
		}
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	client, err := upstream.New(upstream.Config{
		BaseURL: upstreamURL, APIKey: apiKey, FlowID: flowID, AdminToken: cfg.adminToken, Timeout: cfg.callTimeout, Metrics: metrics,
	})
	if err != nil {
		return err
	}
	var cluster *rediscluster.Node // nil: a single node
	if cfg.redisURL != "" {
		redis.SetLogger(redisLog{log})
		if cluster, err = rediscluster.New(rediscluster.Config{
			URL: cfg.redisURL, Prefix: cfg.redisPrefix, LeaseTTL: cfg.leaseTTL, Retention: cfg.tokenTTL, Metrics: metrics, Logger: log,
		}); err != nil {
			return err
		}
		defer cluster.Close() // after the pollers: they release their leases
		log.Info("cluster mode", "redis", redactURL(cfg.redisURL), "node", cluster.ID())
	}
	maxConns, maxStreams := capacity(cfg.maxStreams, log)
	broker, err := sse.NewBroker(sse.BrokerConfig{
		Heartbeat:       cfg.heartbeat,
		WriteTimeout:    cfg.writeTimeout,
		MaxStreams:      maxStreams,
		MaxPerInterview: cfg.maxPerInterview,
		MaxPerClient:    cfg.maxPerClient,
		Metrics:         metrics,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	defer broker.Close()
	pcfg := poller.Config{
		Interval:          cfg.pollInterval,
		Linger:            cfg.linger,
		CallTimeout:       cfg.callTimeout,
		MaxConcurrent:     cfg.upstreamCalls,
		BackoffMax:        cfg.backoffMax,
		Retention:         cfg.tokenTTL,
		MaxCallsPerSecond: cfg.upstreamRate,
		PushInterval:      cfg.pushInterval,
		PushSilence:       cfg.pushSilence,
		Metrics:           metrics,
		Logger:            log,
	}
	var degraded func() string // nil: a single node is never degraded
	if cluster != nil {
		pcfg.Cluster, degraded = cluster, cluster.Degraded
	}
	statuses, err := poller.New(client, broker, pcfg)
	if err != nil {
		return err
	}
	defer statuses.Close()
	handler, err := sse.New(sse.Config{
		Upstream:          client,
		Statuses:          statuses,
		Broker:            broker,
		Tokens:            tokens,
		FlowOrigin:        flowOrigin,
		Page:              public.Files,
		Ready:             client.Healthy,
		Degraded:          degraded,
		SecureCookie:      cfg.secureCookie,
		AllowedOrigins:    splitList(cfg.allowedOrigins),
		WebhookSecret:     webhookSecret,
		WebhookSources:    webhookSources,
		FrameAncestors:    cfg.frameAncestors,
		ClientIPHeader:    cfg.clientIPHeader,
		SessionsPerMinute: cfg.sessionsPerMinute,
		SessionBurst:      cfg.sessionBurst,
		RequestTimeout:    2 * cfg.callTimeout,
		Metrics:           metrics,
		MetricsHandler:    promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}),
		Logger:            log,
	})
	if err != nil {
		return err
	}
	gatewayListener := ls.gateway
	if maxConns > 0 {
		if gatewayListener, err = sse.LimitListener(ls.gateway, maxConns, metrics); err != nil {
			return err
		}
	}
	gateway := newServer(handler, gatewayListener, cfg.readHeaderTimeout, log)
	servers := []*server{gateway}
	if sim != nil {
		servers = append(servers, sim)
	}

	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if err := s.serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	log.Info("pushgate ready", "open", "http://"+reachable(ls.gateway.Addr().String())+"/", "upstream", upstreamURL, "flow_origin", flowOrigin)
	if ls.sim != nil {
		fmt.Fprintf(os.Stderr, "\n  pushgate is running with the built-in simulator.\n  Open http://%s/ in a browser.\n\n", reachable(ls.gateway.Addr().String()))
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	// Order: readiness off and streams ended, then the gateway stops
	// taking requests and finishes those in flight, then the pollers stop,
	// and the simulator, which in-flight requests may still need, goes last.
	log.Info("shutting down", "grace", cfg.shutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownGrace)
	defer cancel()
	if cfg.drainDelay > 0 {
		handler.Unready()
		log.Info("unready; draining after the delay", "delay", cfg.drainDelay)
		time.Sleep(cfg.drainDelay)
	}
	handler.Drain()
	stopWebhooks() // before the gateway stops taking them
	gateway.shutdown(shutdownCtx, log)
	statuses.Close()
	if cluster != nil {
		cluster.Close()
	}
	if sim != nil {
		sim.shutdown(shutdownCtx, log)
	}
	wg.Wait()
	return serveErr
}

// server is an http.Server bound to its listener.
type server struct {
	*http.Server
	ln net.Listener
}

func (s *server) serve() error { return s.Serve(s.ln) }

// shutdown stops s gracefully, or closes its connections when ctx ends first.
func (s *server) shutdown(ctx context.Context, log *slog.Logger) {
	if err := s.Shutdown(ctx); err != nil {
		log.Warn("shutdown incomplete; closing connections", "err", err)
		_ = s.Close()
	}
}

// newServer returns a server with timeouts that keep slow clients from
// holding it. WriteTimeout stays 0: streams use per-write deadlines.
func newServer(h http.Handler, ln net.Listener, readHeaderTimeout time.Duration, log *slog.Logger) *server {
	return &server{
		Server: &http.Server{
			Handler: h,
			// No ReadTimeout: its deadline would also cut open streams;
			// no handler reads a request body.
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    32 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln: ln,
	}
}

func listen(cfg config) (*listeners, error) {
	gw, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("gateway listener: %w", err)
	}
	ls := &listeners{gateway: gw}
	if cfg.upstreamURL == "" {
		if ls.sim, err = net.Listen("tcp", cfg.simAddr); err != nil {
			gw.Close()
			return nil, fmt.Errorf("simulator listener: %w", err)
		}
	}
	return ls, nil
}

// reachable turns a listen address into one a local browser can open.
func reachable(addr string) string { return withHost(addr, "localhost") }

// loopback turns a listen address into one this process can call.
func loopback(addr string) string { return withHost(addr, "127.0.0.1") }

// withHost replaces an empty or unspecified host in addr with host.
func withHost(addr, host string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
		host = h
	}
	return net.JoinHostPort(host, port)
}

// fileReserve is how many open files a node keeps for other things than
// client connections: listeners, upstream calls, and with the built-in
// simulator both ends of those calls.
const fileReserve = 300

// capacity raises the open-file limit and derives the caps from it: the
// gateway's open connections (0: none), and the open streams (maxStreams
// when set; negative means none).
func capacity(maxStreams int, log *slog.Logger) (conns, streams int) {
	files, err := raiseFileLimit()
	if err != nil || files <= 2*fileReserve {
		log.Warn("cannot use the open-file limit for the caps", "limit", files, "err", err)
		if maxStreams == 0 {
			maxStreams = 10000
		}
		return 0, maxStreams
	}
	conns = int(min(files, 1<<20)) - fileReserve // an unlimited limit is not a cap to derive from
	switch {
	case maxStreams == 0:
		maxStreams = conns - 50 // room for requests beside the streams
	case maxStreams > conns:
		log.Warn("-max-streams is above the connection cap; the connection cap holds", "max_streams", maxStreams, "max_connections", conns)
	}
	log.Info("capacity", "open_file_limit", files, "max_connections", conns, "max_streams", maxStreams)
	return conns, maxStreams
}

// randomSecret returns 32 random bytes, hex-encoded.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// parsePrefixes reads a comma-separated list of addresses and CIDR ranges.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(v) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("-webhook-allowed-ips: %q is neither an address nor a CIDR range", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// redisLog sends the Redis client's own messages (each failed reconnect) to
// the log at debug level: the cluster node reports an outage once, at warn.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

// redactURL hides the password of a URL for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// origin cuts a URL down to scheme://host[:port].
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return strings.TrimRight(raw, "/")
	}
	return u.Scheme + "://" + u.Host
}
