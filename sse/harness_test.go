package sse

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// gateway is a whole pushgate in the test process: the simulator over
// HTTP, the real upstream client, poller, broker and handler.
type gateway struct {
	t        testingTB
	sim      *simulator.Simulator
	simURL   string
	url      string
	statuses *poller.Manager
	broker   *Broker
	handler  *Handler
	tokens   *Tokens
}

type options struct {
	interval     time.Duration // poll interval; zero means 50ms
	linger       time.Duration // zero means 200ms
	writeTimeout time.Duration // zero means 2s
	heartbeat    time.Duration // zero means 1m
	broker       BrokerConfig  // caps; the durations and Logger above win
	handler      Config        // CORS, rate limits and the like; the wiring is the harness's
	poller       poller.Config // timeouts, backoff, caps; interval, linger and Logger above win
	upstreamURL  string        // where the client calls the upstream; empty means the simulator
	smallBuffers bool          // tiny socket send buffers, so a reader that stalls blocks writes soon
	webhooks     bool          // the simulator pushes every change to the gateway's webhook
}

// webhookSecret is the bearer secret of the harness's webhook calls.
const webhookSecret = "webhook-secret-for-tests"

// testingTB is what newGateway needs of a test or benchmark.
type testingTB interface {
	Helper()
	Fatal(...any)
	Fatalf(string, ...any)
	Cleanup(func())
}

func newGateway(t testingTB, o options) *gateway {
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
	srv := httptest.NewUnstartedServer(nil) // bound now, so the simulator knows where to push
	simCfg := simulator.Config{APIKey: "test-key"}
	if o.webhooks {
		simCfg.WebhookURL, simCfg.WebhookSecret = "http://"+srv.Listener.Addr().String()+"/webhooks/onboarding-status", webhookSecret
		o.handler.WebhookSecret = webhookSecret
	}
	sim := simulator.New(simCfg)
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	t.Cleanup(sim.Close)
	base := simSrv.URL
	if o.upstreamURL != "" {
		base = o.upstreamURL
	}
	client, err := upstream.New(upstream.Config{BaseURL: base, APIKey: "test-key", FlowID: "flow", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	bc := o.broker
	bc.WriteTimeout, bc.Heartbeat, bc.Retry, bc.Logger = o.writeTimeout, o.heartbeat, 0, quiet
	broker, err := NewBroker(bc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	pc := o.poller
	pc.Interval, pc.Linger, pc.Logger = o.interval, o.linger, quiet
	statuses, err := poller.New(client, broker, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(statuses.Close)
	tokens, err := NewTokens([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hc := o.handler
	hc.Upstream, hc.Statuses, hc.Broker, hc.Tokens = client, statuses, broker, tokens
	hc.FlowOrigin, hc.Ready, hc.Logger = simSrv.URL, client.Healthy, quiet
	hc.Page = fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>page</title>")}, "app.js": {Data: []byte("'use strict';")}}
	if hc.SessionsPerMinute == 0 {
		hc.SessionsPerMinute = -1 // tests start many sessions; the limit has its own tests
	}
	h, err := New(hc)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	if o.smallBuffers {
		srv.Listener = smallBufferListener{srv.Listener}
	}
	srv.Start()
	t.Cleanup(func() {
		h.Drain()
		srv.CloseClientConnections()
		srv.Close()
	})
	return &gateway{t: t, sim: sim, simURL: simSrv.URL, url: srv.URL, statuses: statuses, broker: broker, handler: h, tokens: tokens}
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
		if c.Name == cookieName(s.InterviewID) {
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

// event is one parsed SSE event.
type event struct {
	id, name, data, retry string
}

// stream is an open SSE response read in the background.
type stream struct {
	resp   *http.Response
	events chan event // closed at the end of the stream
}

// open connects to /events; lastID "" sends no Last-Event-ID.
func (g *gateway) open(s session, lastID string) *stream {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+"/events?interviewId="+s.InterviewID, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("X-Token", s.Token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	st := &stream{resp: resp, events: make(chan event, 4096)}
	g.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(st.events)
		return st
	}
	go readEvents(resp.Body, st.events)
	return st
}

// readEvents parses an event stream as a browser's EventSource does:
// fields until a blank line; comments ignored; an event with data is
// dispatched, a retry-only block too (so tests can see the hint).
func readEvents(r io.Reader, out chan<- event) {
	defer close(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var ev event
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if ev.data != "" || ev.retry != "" {
				out <- ev
			}
			ev = event{}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.name = value
		case "data":
			if ev.data != "" {
				ev.data += "\n"
			}
			ev.data += value
		case "retry":
			ev.retry = value
		}
	}
}

// next returns the next event, or fails when none arrives in time (a guard
// against hanging, not a measurement) or the stream ended.
func (s *stream) next(t *testing.T) event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended, want another event")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return event{}
}

// ended waits for the end of the stream and returns events still unread.
func (s *stream) ended(t *testing.T) []event {
	t.Helper()
	var rest []event
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return rest
			}
			rest = append(rest, ev)
		case <-deadline:
			t.Fatal("stream still open after 10s")
		}
	}
}

// statusOf decodes a status event.
func statusOf(t *testing.T, ev event) poller.Update {
	t.Helper()
	if ev.name != "status" {
		t.Fatalf("event %+v: want a status event", ev)
	}
	var u poller.Update
	if err := json.Unmarshal([]byte(ev.data), &u); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	if ev.id == "" || ev.id != jsonNumber(u.Seq) {
		t.Fatalf("event id %q does not match seq %d", ev.id, u.Seq)
	}
	return u
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// eventually polls cond until it holds or 10s pass.
func eventually(t testingTB, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, cond)
}

// eventuallyWithin polls cond until it holds or d passes (a guard against
// hanging, sized for a loaded CI machine, not a measurement).
func eventuallyWithin(t testingTB, d time.Duration, what string, cond func() bool) {
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
func sameChange(t *testing.T, streams []*stream, status string, prev poller.Update) poller.Update {
	t.Helper()
	var change poller.Update
	for i, st := range streams {
		u := statusOf(t, st.next(t))
		if i == 0 {
			change = u
		}
		if u.Status != status || u.Seq <= prev.Seq || u != change {
			t.Fatalf("subscriber %d got %+v, want %s above seq %d, like subscriber 0 (%+v)", i, u, status, prev.Seq, change)
		}
	}
	return change
}
