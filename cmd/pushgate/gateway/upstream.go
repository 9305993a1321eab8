package gateway

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// newUpstream makes the upstream client: of the configured upstream, or of
// the built-in simulator, which it starts serving on its listener.
func (g *Gateway) newUpstream() error {
	uc, flowOrigins := g.cfg.Upstream, g.cfg.FlowOrigins
	if uc.BaseURL == "" {
		if err := g.startSimulator(); err != nil {
			return err
		}
		uc.BaseURL, uc.APIKey = "http://"+g.ls.Simulator.Addr().String(), SimulatorAPIKey
		if uc.FlowID == "" {
			uc.FlowID = simulatorFlowID // unless HTTP.Flows name others, below
		}
		if len(flowOrigins) == 0 {
			flowOrigins = []string{origin(g.SimURL)}
		}
	}
	if len(flowOrigins) == 0 {
		flowOrigins = []string{origin(uc.BaseURL)}
		g.log.Warn("-flow-origin is not set: the page frames only the upstream API's origin, but the upstream's flow pages usually live on another host, and the iframe then stays blank; set -flow-origin to the origin of the onboarding URLs (pushgate logs it at the first session)", "framing", flowOrigins[0])
	}
	g.UpstreamURL, g.FlowOrigins = uc.BaseURL, flowOrigins
	g.settleFlows(&uc)
	uc.Metrics = g.Metrics
	client, err := upstream.New(uc)
	if err != nil {
		return err
	}
	g.client = client
	g.onClose("upstream client", client.Close)
	return nil
}

// simulatorFlowID is the flow of the built-in simulator's sessions when
// no flow is configured.
const simulatorFlowID = "pushgate-sim-flow"

// settleFlows makes the handler's flows and the upstream client's default
// flow agree: the first of HTTP.Flows is the client's FlowID, and without
// HTTP.Flows the client's FlowID is the handler's one flow.
func (g *Gateway) settleFlows(uc *upstream.Config) {
	flows := &g.cfg.HTTP.Flows
	switch {
	case len(*flows) > 0:
		uc.FlowID = (*flows)[0]
	case uc.FlowID != "":
		*flows = []string{uc.FlowID}
	}
}

// startSimulator serves the built-in simulator on its listener. With its
// webhooks on, it pushes every change to this gateway's webhook route. Its
// control API answers anyone only when that listener is on loopback.
func (g *Gateway) startSimulator() error {
	cfg := &g.cfg
	if t := cfg.Simulator.ControlToken; t != "" && len(t) < 16 {
		return errors.New("gateway: the simulator's control token must be at least 16 bytes")
	}
	if cfg.Simulator.WebhookRetryScale < 0 || cfg.Simulator.FlowTimeout < 0 {
		return errors.New("gateway: the simulator's webhook retry scale and flow timeout must not be negative")
	}
	g.SimURL = cfg.Simulator.PublicURL
	if g.SimURL == "" {
		g.SimURL = "http://" + reachable(g.ls.Simulator.Addr().String())
	}
	sc := simulator.Config{
		APIKey: SimulatorAPIKey, PublicURL: g.SimURL, Order: cfg.Simulator.Order, Logger: g.log.With("component", "simulator"),
		AdminToken: cfg.Upstream.AdminToken, AdminEmail: cfg.Upstream.AdminEmail, AdminPassword: cfg.Upstream.AdminPassword,
		Addr: g.ls.Simulator.Addr(), ControlToken: cfg.Simulator.ControlToken,
		WebhookRetryScale: cfg.Simulator.WebhookRetryScale, FlowTimeout: cfg.Simulator.FlowTimeout,
	}
	if cfg.Simulator.Webhooks {
		g.simulatorWebhooks(&sc)
	}
	g.Simulator = simulator.New(sc)
	g.onClose("simulator webhooks", g.Simulator.Close) // Serve stops them first
	if cfg.Simulator.Faults != "" {
		f, err := simulator.ParseFaults(cfg.Simulator.Faults)
		if err != nil {
			return err
		}
		g.Simulator.SetFaults(f)
	}
	sim := g.newServer(g.Simulator, g.ls.Simulator, nil)
	g.start(sim)
	g.onClose("simulator listener", func() { g.shutdownServer(sim) }) // last: reads in flight may need it
	return nil
}

// simulatorWebhooks sets the simulator up to call this gateway's webhook
// the way the upstream does in the mode configured, making up the secrets
// the gateway and simulator then share.
func (g *Gateway) simulatorWebhooks(sc *simulator.Config) {
	hc := &g.cfg.HTTP
	base := "http://" + loopback(g.ls.Gateway.Addr().String())
	if g.certs != nil {
		base = "https://" + loopback(g.ls.Gateway.Addr().String())
		sc.WebhookTLS = g.certs.selfConfig()
	}
	sc.WebhookURL = base + "/webhooks/onboarding-status"
	mode := g.cfg.Simulator.WebhookAuth
	if mode == "" {
		switch {
		case hc.WebhookClientID != "":
			mode = WebhookAuthOAuth
		case hc.WebhookHeaderName != "":
			mode = WebhookAuthHeader
		default:
			mode = WebhookAuthPath
		}
	}
	if mode == WebhookAuthHeader {
		if hc.WebhookHeaderName == "" {
			hc.WebhookHeaderName, hc.WebhookHeaderValue = "X-Pushgate-Sim-Hook", randomSecret()
		}
		sc.WebhookHeaders = http.Header{http.CanonicalHeaderKey(hc.WebhookHeaderName): {hc.WebhookHeaderValue}}
		return
	}
	if mode == WebhookAuthOAuth {
		if hc.WebhookClientID == "" {
			hc.WebhookClientID, hc.WebhookClientSecret = "pushgate-sim", randomSecret()
		}
		sc.WebhookTokenURL, sc.WebhookClientID, sc.WebhookClientSecret = base+"/webhooks/token", hc.WebhookClientID, hc.WebhookClientSecret
		return
	}
	if hc.WebhookSecret == "" {
		hc.WebhookSecret = randomSecret()
	}
	if mode == WebhookAuthBearer {
		sc.WebhookSecret = hc.WebhookSecret
		return
	}
	sc.WebhookURL += "/" + url.PathEscape(hc.WebhookSecret)
}

// The upstream client is the poller's Source as it is: it tells the
// upstream's health and can be probed, so /readyz follows the upstream
// without traffic, and a recovery reads every interview at once.
var _ interface {
	poller.Source
	poller.HealthChecker
	poller.Prober
} = (*upstream.Client)(nil)

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

// origin cuts a URL down to scheme://host[:port].
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return strings.TrimRight(raw, "/")
	}
	return u.Scheme + "://" + u.Host
}

// redactURL hides the passwords of a URL for logs: its own, and those
// its query may carry (go-redis's failover URL takes the master's as
// password=).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	if q := u.Query(); q.Has("password") || q.Has("sentinel_password") {
		for _, k := range []string{"password", "sentinel_password"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
