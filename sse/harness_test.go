package sse_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
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
// process, built by gateway.New as the command builds it: the simulator
// over HTTP, the real upstream client, poller, broker and handler.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// gateway is a running pushgate (pushgate.Gateway) and what the tests
// drive it with.
type gateway struct {
	t        testing.TB
	metrics  *prometheus.Registry
	logs     *logBuffer // what the gateway logged, with options.keepLogs
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
	handler         sse.Config       // CORS, rate limits and the like; the wiring is the gateway's
	poller          poller.Config    // timeouts, backoff, caps; interval and linger above win
	maxUpstreamRate float64          // the node's ceiling on upstream calls per second; zero means none
	upstreamURL     string           // where the client calls the upstream (a simulator of the test's own behind it); empty means the built-in simulator
	upstreamTimeout time.Duration    // of each upstream call (and the poller's CallTimeout unless set); zero means 2s
	smallBuffers    bool             // tiny socket send buffers, so a reader that stalls blocks writes soon
	webhooks        bool             // the simulator pushes every change to the gateway's webhook
	webhookAuth     string           // how: pushgate.WebhookAuth*; empty as the gateway defaults it
	order           string           // the order the simulator's flow page sets statuses in
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
)

func newGateway(t testing.TB, o options) *gateway {
	t.Helper()
	if o.interval == 0 {
		o.interval = 50 * time.Millisecond
	}
	if o.linger == 0 {
		o.linger = 200 * time.Millisecond
	}
	if o.writeTimeout == 0 {
		o.writeTimeout = 2 * time.Second
	}
	if o.heartbeat == 0 {
		o.heartbeat = time.Minute
	}
	if o.upstreamTimeout == 0 {
		o.upstreamTimeout = 2 * time.Second
	}
	cfg := pushgate.Config{
		Upstream:      upstream.Config{Timeout: o.upstreamTimeout},
		Simulator:     pushgate.SimulatorConfig{Webhooks: o.webhooks, WebhookAuth: o.webhookAuth, Order: o.order},
		Secret:        tokenSecret,
		Poller:        o.poller,
		Relay:         o.relay,
		Broker:        o.broker,
		HTTP:          o.handler,
		ShutdownGrace: 5 * time.Second,
		Logger:        quiet,
	}
	cfg.Poller.Interval, cfg.Poller.Linger = o.interval, o.linger
	cfg.MaxUpstreamCallsPerSecond = o.maxUpstreamRate
	cfg.Broker.WriteTimeout, cfg.Broker.Heartbeat = o.writeTimeout, o.heartbeat
	cfg.HTTP.Page, cfg.FlowOrigins = o.page, o.flowOrigins
	if cfg.HTTP.Page == nil {
		cfg.HTTP.Page = fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>page</title>")}, "app.js": {Data: []byte("'use strict';")}}
	}
	if cfg.HTTP.SessionsPerMinute == 0 {
		cfg.HTTP.SessionsPerMinute = -1 // tests start many sessions; the limit has its own tests
	}
	if cfg.HTTP.NodeSessionsPerMinute == 0 {
		cfg.HTTP.NodeSessionsPerMinute = -1 // likewise
	}
	if o.webhooks && o.webhookAuth != pushgate.WebhookAuthOAuth {
		cfg.HTTP.WebhookSecret = webhookSecret
	}
	logs := &logBuffer{}
	if o.keepLogs {
		level := slog.LevelInfo
		if o.debugLogs {
			level = slog.LevelDebug
		}
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	}
	simAddr := "127.0.0.1:0"
	if o.upstreamURL != "" {
		simAddr = "" // the test's own upstream
	}
	ls, err := pushgate.Listen("127.0.0.1:0", simAddr)
	if err != nil {
		t.Fatal(err)
	}
	if o.smallBuffers {
		ls.Gateway = smallBufferListener{ls.Gateway}
	}
	var sim *simulator.Simulator
	var simURL string
	if o.upstreamURL != "" {
		sim = simulator.New(simulator.Config{APIKey: "test-key"})
		simSrv := httptest.NewServer(sim)
		t.Cleanup(simSrv.Close)
		cfg.Upstream.BaseURL, cfg.Upstream.APIKey, cfg.Upstream.FlowID = o.upstreamURL, "test-key", "flow"
		cfg.FlowOrigins, simURL = []string{simSrv.URL}, simSrv.URL
	}
	gw, err := pushgate.New(cfg, ls)
	if err != nil {
		t.Fatal(err)
	}
	if sim == nil {
		sim, simURL = gw.Simulator, gw.SimURL
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &gateway{t: t, logs: logs, metrics: gw.Metrics, sim: sim, simURL: simURL, url: "http://" + ls.Gateway.Addr().String(),
		statuses: gw.Statuses, broker: gw.Broker, handler: gw.Handler, tokens: gw.Tokens}
}

// logBuffer keeps what the gateway logs, from any goroutine.
type logBuffer struct {
	mu  sync.Mutex // protects buf
	buf []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
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
