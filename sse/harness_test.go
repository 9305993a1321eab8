package sse_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/internal/upstreamsse"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/sse/ssetest"
	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// The tests of this file's package drive a whole pushgate in the test
// process, wired here from the packages at or below sse as
// cmd/pushgate/gateway wires it: the simulator over HTTP, the real
// upstream client, the relay when configured, poller, broker and handler.
// What is the gateway's own (its options, the simulator's webhook modes,
// the shared call ceiling) is tested in cmd/pushgate/gateway.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// gateway is a running pushgate and what the tests drive it with.
type gateway struct {
	t        testing.TB
	metrics  *prometheus.Registry
	logs     *testenv.Buffer // what the gateway logged, with options.keepLogs
	sim      *simulator.Simulator
	simURL   string
	url      string
	statuses *poller.Manager
	broker   *sse.Broker
	handler  *sse.Handler
	tokens   *sse.Tokens
}

type options struct {
	interval        time.Duration    // poll interval; zero means 50ms
	linger          time.Duration    // zero means 200ms
	writeTimeout    time.Duration    // zero means 2s
	heartbeat       time.Duration    // zero means 1m
	broker          sse.BrokerConfig // caps; the durations above win
	handler         sse.Config       // CORS, rate limits and the like; the wiring is the harness's
	poller          poller.Config    // timeouts, backoff, caps; interval and linger above win
	maxUpstreamRate float64          // the node's ceiling on upstream calls per second; zero means none
	upstreamURL     string           // where the client calls the upstream (the simulator behind a test's own front); empty means the simulator
	upstreamTimeout time.Duration    // of each upstream call (and the poller's CallTimeout unless set); zero means 2s
	smallBuffers    bool             // tiny socket send buffers, so a reader that stalls blocks writes soon
	webhooks        bool             // the simulator pushes every change to the gateway's webhook, webhookSecret in its path
	flowOrigins     []string         // the configured flow origins; empty means the simulator's
	page            fs.FS            // the page; nil means a stand-in
	keepLogs        bool             // keep the gateway's log in gateway.logs; else discard it
	debugLogs       bool             // with keepLogs, Debug records too (every refusal, unsampled)
	relay           relay.Config     // the relay; off without URLs
}

const (
	// webhookSecret is the bearer secret of the harness's webhook calls.
	webhookSecret = "webhook-secret-for-tests-Zq7Xw2Lk9Pd4Rt8V" // at least 32 bytes, as every webhook secret
	// tokenSecret signs the harness's browser tokens.
	tokenSecret = "0123456789abcdef0123456789abcdef"
	// simAPIKey is the API key the harness's upstream client and simulator
	// share.
	simAPIKey = "harness-simulator-key"
	// simFlow is the flow sessions start in when handler.Flows names none.
	simFlow = "pushgate-sim-flow"
)

func (o *options) setDefaults() {
	o.interval = cmp.Or(o.interval, 50*time.Millisecond)
	o.linger = cmp.Or(o.linger, 200*time.Millisecond)
	o.writeTimeout = cmp.Or(o.writeTimeout, 2*time.Second)
	o.heartbeat = cmp.Or(o.heartbeat, time.Minute)
	o.upstreamTimeout = cmp.Or(o.upstreamTimeout, 2*time.Second)
	o.handler.Page = o.page
	if o.handler.Page == nil {
		o.handler.Page = fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>page</title>")}, "app.js": {Data: []byte("'use strict';")}}
	}
	// Tests start many sessions; the limits have their own tests.
	o.handler.SessionsPerMinute = cmp.Or(o.handler.SessionsPerMinute, -1)
	o.handler.NodeSessionsPerMinute = cmp.Or(o.handler.NodeSessionsPerMinute, -1)
	if o.webhooks {
		o.handler.WebhookSecret = webhookSecret
	}
	if len(o.handler.Flows) == 0 {
		o.handler.Flows = []string{simFlow} // the first is the client's default
	}
	o.handler.RequestTimeout = cmp.Or(o.handler.RequestTimeout, 2*o.upstreamTimeout)
	o.poller.CallTimeout = cmp.Or(o.poller.CallTimeout, o.upstreamTimeout)
	o.poller.Interval, o.poller.Linger = o.interval, o.linger
	o.broker.WriteTimeout, o.broker.Heartbeat = o.writeTimeout, o.heartbeat
}

func newGateway(t testing.TB, o options) *gateway {
	t.Helper()
	o.setDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, metrics: prometheus.NewRegistry(), logs: &testenv.Buffer{}, url: "http://" + ln.Addr().String()}
	log := quiet
	if o.keepLogs {
		level := slog.LevelInfo
		if o.debugLogs {
			level = slog.LevelDebug
		}
		log = slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: level}))
	}
	g.startSimulator(o.webhooks)
	client, err := upstream.New(upstream.Config{BaseURL: cmp.Or(o.upstreamURL, g.simURL), APIKey: simAPIKey,
		FlowID: o.handler.Flows[0], Timeout: o.upstreamTimeout, Metrics: g.metrics})
	g.check(err)
	t.Cleanup(client.Close)
	var scorer verdicts // the relay is built before the handler it asks
	rl := g.newRelay(o.relay, &scorer, log)
	ceiling := g.newStatuses(o, client, rl, log)
	g.newHandler(o.handler, o.flowOrigins, upstreamsse.Sessions{Client: client, Ceiling: ceiling}, rl, log)
	scorer.Store(g.handler)
	if o.smallBuffers {
		ln = smallBufferListener{ln}
	}
	g.serve(ln, log)
	return g
}

// newStatuses starts the broker and the poller that feeds it, and tells
// the relay, when there is one, of every change. It returns the ceiling
// of every upstream call, nil without one, as the gateway's.
func (g *gateway) newStatuses(o options, client *upstream.Client, rl *relay.Relay, log *slog.Logger) *rate.Limiter {
	bc := o.broker
	bc.Metrics, bc.Logger = g.metrics, log
	var err error
	g.broker, err = sse.NewBroker(bc)
	g.check(err)
	g.t.Cleanup(g.broker.Close)
	pc := o.poller
	pc.Metrics, pc.Logger = g.metrics, log
	if o.maxUpstreamRate > 0 {
		pc.Ceiling = poller.NewCeiling(o.maxUpstreamRate)
	}
	if rl != nil {
		pc.Observer = rl
	}
	g.statuses, err = poller.New(client, g.broker, pc)
	g.check(err)
	g.t.Cleanup(g.statuses.Close)
	return pc.Ceiling
}

// newHandler builds the handler of hc, wired to the parts and up.
func (g *gateway) newHandler(hc sse.Config, flowOrigins []string, up sse.Upstream, rl *relay.Relay, log *slog.Logger) {
	var err error
	g.tokens, err = sse.NewTokens([]byte(tokenSecret), time.Hour)
	g.check(err)
	hc.Upstream, hc.Statuses, hc.Broker, hc.Tokens = up, g.statuses, g.broker, g.tokens
	hc.FlowOrigins = flowOrigins
	if len(hc.FlowOrigins) == 0 {
		hc.FlowOrigins = []string{g.simURL}
	}
	hc.Metrics, hc.Logger, hc.MetricsHandler = g.metrics, log, promhttp.HandlerFor(g.metrics, promhttp.HandlerOpts{})
	if rl != nil {
		hc.Relay = rl // not a nil *relay.Relay in the interface
	}
	g.handler, err = sse.New(hc)
	g.check(err)
}

// check fails the test on a wiring error.
func (g *gateway) check(err error) {
	g.t.Helper()
	if err != nil {
		g.t.Fatal(err)
	}
}

// startSimulator serves the simulator over HTTP. With webhooks, it pushes
// every change to the gateway's webhook as the gateway's built-in one
// does by default: the secret in the URL's path.
func (g *gateway) startSimulator(webhooks bool) {
	srv := httptest.NewUnstartedServer(nil)
	sc := simulator.Config{APIKey: simAPIKey, PublicURL: "http://" + srv.Listener.Addr().String()}
	if webhooks {
		sc.WebhookURL = g.url + "/webhooks/onboarding-status/" + webhookSecret
	}
	g.sim = simulator.New(sc)
	srv.Config.Handler = g.sim
	srv.Start()
	g.t.Cleanup(srv.Close)
	g.t.Cleanup(g.sim.Close)
	g.simURL = srv.URL
}

// newRelay starts the relay when rc has URLs, its queue in memory; nil
// without.
func (g *gateway) newRelay(rc relay.Config, scorer relay.Scorer, log *slog.Logger) *relay.Relay {
	if len(rc.URLs) == 0 {
		return nil
	}
	rc.Metrics, rc.Logger, rc.Scorer = g.metrics, log, scorer
	r, err := relay.New(rc)
	g.check(err)
	g.t.Cleanup(func() {
		if err := r.Close(); err != nil {
			g.t.Error(err)
		}
	})
	return r
}

// verdicts is the relay's Scorer: the handler's, stored once it is built,
// before the gateway serves anything that makes the relay ask.
type verdicts struct{ atomic.Pointer[sse.Handler] }

func (v *verdicts) Verdict(ctx context.Context, interviewID string) (string, error) {
	return v.Load().Verdict(ctx, interviewID)
}

// serve serves the handler on ln until the test ends, then shuts down in
// the gateway's order: the streams ended, the simulator's webhooks
// stopped, the requests in flight finished, the listener closed; then
// (the cleanups before this one) the pollers, broker, relay, client and
// simulator.
func (g *gateway) serve(ln net.Listener, log *slog.Logger) {
	srv := &http.Server{Handler: g.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	g.t.Cleanup(func() {
		g.handler.Drain()
		g.sim.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.handler.Drained(ctx)
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close() // as the gateway, once its grace period is over
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			g.t.Error(err)
		}
	})
}

// smallBufferListener shrinks each accepted connection's send buffer.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// pollers is the number of pollers running, as /metrics shows it.
func (g *gateway) pollers() float64 { return pollertest.Pollers(g.t, g.metrics) }

// session is what /onboarding-url hands the browser.
type session struct {
	URL         string `json:"url"`
	InterviewID string `json:"interviewId"`
	Token       string `json:"token"`
	cookie      *http.Cookie
}

func (g *gateway) start() session {
	g.t.Helper()
	resp, err := http.Get(g.url + "/onboarding-url")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var s session
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("/onboarding-url: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		g.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sse.CookieName(s.InterviewID) {
			s.cookie = c
		}
	}
	return s
}

func (g *gateway) setStatus(id, status string) {
	g.t.Helper()
	if err := g.sim.SetStatus(id, status); err != nil {
		g.t.Fatal(err)
	}
}

// get sends a GET with optional headers and returns status and body.
func (g *gateway) get(path string, header http.Header) (int, http.Header, string) {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+path, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func tokenHeader(tok string) http.Header { return http.Header{"X-Token": {tok}} }

// open connects to /events; lastID "" sends no Last-Event-ID.
func (g *gateway) open(s session, lastID string) *ssetest.Stream {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+"/events?interviewId="+s.InterviewID, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("X-Token", s.Token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	return ssetest.Open(g.t, http.DefaultClient, req)
}

// expiredToken returns a token for the interview, signed with the
// harness's secret, that has expired.
func expiredToken(t testing.TB, interviewID string) string {
	t.Helper()
	tokens, err := sse.NewTokens([]byte(tokenSecret), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tok, exp := tokens.Issue(interviewID)
	time.Sleep(time.Until(exp))
	return tok
}

// statusOf decodes a status event.
func statusOf(t testing.TB, ev ssetest.Event) flow.Update {
	t.Helper()
	u, err := ssetest.Status(ev)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// eventually polls cond until it holds or 10s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, cond)
}

// eventuallyWithin polls cond until it holds or d passes (a guard against
// hanging, sized for a loaded CI machine, not a measurement).
func eventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameChange reads the next event of every stream: each must be status,
// numbered above prev, and the same event for all. It returns that event.
func sameChange(t *testing.T, streams []*ssetest.Stream, status string, prev flow.Update) flow.Update {
	t.Helper()
	var change flow.Update
	for i, st := range streams {
		u := statusOf(t, st.Next(t))
		if i == 0 {
			change = u
		}
		if u.Status != status || u.Seq <= prev.Seq || u != change {
			t.Fatalf("subscriber %d got %+v, want %s above seq %d, like subscriber 0 (%+v)", i, u, status, prev.Seq, change)
		}
	}
	return change
}
