package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/relay/relaytest"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/sse/ssetest"
)

func TestMain(m *testing.M) {
	testenv.Parallel(4) // the parallel tests wait on their cluster's timelines
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		for _, b := range []*binaries{clusterBinaries, skewBinaries} {
			if b.dir != "" {
				os.RemoveAll(b.dir)
			}
		}
	}))
}

func TestConfigFromFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{"PUSHGATE_POLL_INTERVAL": "250ms", "PUSHGATE_ADDR": ":1", "PUSHGATE_HEARTBEAT": "5s"}
	c, err := parseConfig([]string{"-addr", "127.0.0.1:9"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:9" || c.gw.Poller.Interval != 250*time.Millisecond || c.gw.Broker.Heartbeat != 5*time.Second {
		t.Fatalf("flags must win over env, env over defaults: %+v", c)
	}
	for _, bad := range [][]string{
		{"-upstream", "https://api.example"},
		{"-secret", "short"},
		{"-poll-interval", "0s"},
		{"-log-format", "xml"},
		{"-admin-email", "exec@example.com"},
		{"-admin-email", "exec@example.com", "-admin-password", "pw", "-admin-token", "tok"},
		{"-webhook-client-id", "incode"},
		{"-admin-token-ttl", "0s"},
		{"-idle-timeout", "0s"},
		{"-public-sessions=false"},                  // nothing could start a session
		{"-api-token", "short"},                     // under 16 bytes
		{"-api-token", "a-long-token with-a-space"}, // not one token
		{"-api-token", "0123456789abcdef", "-api-burst", "0"},
		{"-retention", "-1s"},
		{"-probe-interval", "-1s"},
		{"-secret", "a-test-secret-of-32-bytes-length", "-previous-secret", "the-old-secret-of-32-bytes-long."},                                       // no end
		{"-secret", "a-test-secret-of-32-bytes-length", "-previous-secret", "the-old-secret-of-32-bytes-long.", "-previous-secret-until", "tomorrow"}, // not RFC 3339
		{"-client-ip-header", "X-Forwarded-For"}, // believed from anyone
		{"-trusted-proxies", "10.0.0.0/8,not-an-address"},
		{"-webhook-header", "X-Incode-Hook"},                           // no value
		{"-webhook-header", "X-Incode-Hook: too-short"},                // under 32 bytes
		{"-webhook-header", ": a-value-of-32-bytes-or-more-for-tests"}, // no name
		{"-relay-url", "https://backend.example/hook"},                 // unsigned
		{"-relay-secret", relaytest.Secret},                            // nowhere to relay
		{"-relay-url", "ftp://backend.example/hook", "-relay-secret", relaytest.Secret},
		{"-relay-url", "https://backend.example/hook", "-relay-secret", "whsec_c2hvcnQ="},
		{"-relay-url", "https://backend.example/hook", "-relay-secret", relaytest.Secret, "-relay-events", "status,everything"},
		{"-relay-url", "https://backend.example/hook", "-relay-secret", relaytest.Secret + "," + relaytest.Secret + "," + relaytest.Secret},
		{"-relay-url", "https://backend.example/hook", "-relay-secret", relaytest.Secret, "-relay-timeout", "0s"},
		{"stray"},
		{"-redis-url", "redis://127.0.0.1:6379", "-upstream", "http://up", "-api-key", "k", "-flow-id", "f"}, // no shared -secret
		{"-redis-url", "redis://127.0.0.1:6379", "-secret", "a-test-secret-of-32-bytes-length"},              // no shared upstream
		{"-redis-url", "redis://127.0.0.1:6379", "-secret", "a-test-secret-of-32-bytes-length", "-upstream", "http://up", "-api-key", "k", "-flow-id", "f", "-lease-ttl", "10ms"},
	} {
		if _, err := parseConfig(bad, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// -previous-secret-grace was removed (it restarted with the process): the
	// flag package refuses it as unknown, and its variable is ignored.
	if _, err := parseConfig([]string{"-previous-secret-grace", "1h"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "flag provided but not defined: -previous-secret-grace") {
		t.Errorf("-previous-secret-grace: %v; want it refused as a flag not defined", err)
	}
	if _, err := parseConfig(nil, func(k string) string { return map[string]string{"PUSHGATE_PREVIOUS_SECRET_GRACE": "1h"}[k] }, io.Discard); err != nil {
		t.Errorf("PUSHGATE_PREVIOUS_SECRET_GRACE: %v; want it ignored", err)
	}
	relayEnv := map[string]string{"PUSHGATE_RELAY_URL": "https://a.example/hook, https://b.example/hook", "PUSHGATE_RELAY_SECRET": relaytest.Secret}
	if c, err := parseConfig([]string{"-relay-url", "https://c.example/hook", "-relay-url", "https://d.example/hook"}, func(k string) string { return relayEnv[k] }, io.Discard); err != nil ||
		strings.Join(c.gw.Relay.URLs, " ") != "https://c.example/hook https://d.example/hook" || len(c.gw.Relay.Secrets) != 1 || len(c.gw.Relay.Kinds) != 3 {
		t.Errorf("relay flags: %+v, %v; want the flags' two URLs (they win over the environment), its secret, every kind", c.gw.Relay, err)
	}
	if c, err := parseConfig(nil, func(k string) string { return relayEnv[k] }, io.Discard); err != nil || len(c.gw.Relay.URLs) != 2 {
		t.Errorf("PUSHGATE_RELAY_URL: %v, %v; want two URLs", c.gw.Relay.URLs, err)
	}
	hook := map[string]string{"PUSHGATE_WEBHOOK_HEADER": "X-Incode-Hook:  a-value-of-32-bytes-or-more-for-tests "}
	if c, err := parseConfig(nil, func(k string) string { return hook[k] }, io.Discard); err != nil || c.gw.HTTP.WebhookHeaderName != "X-Incode-Hook" || c.gw.HTTP.WebhookHeaderValue != "a-value-of-32-bytes-or-more-for-tests" {
		t.Errorf("PUSHGATE_WEBHOOK_HEADER: %q, %q, %v; want the name and the trimmed value", c.gw.HTTP.WebhookHeaderName, c.gw.HTTP.WebhookHeaderValue, err)
	}
	if _, err := parseConfig(nil, func(k string) string { return map[string]string{"PUSHGATE_LINGER": "soon"}[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "PUSHGATE_LINGER") {
		t.Errorf("bad env value: %v, want an error naming PUSHGATE_LINGER", err)
	}
	var usage bytes.Buffer
	parseConfig([]string{"-h"}, func(string) string { return "" }, &usage)
	for _, name := range []string{"-addr", "PUSHGATE_UPSTREAM", "-sim-addr", "-api-key", "-flow-id", "-admin-token", "-secret", "-poll-interval", "-heartbeat"} {
		if !strings.Contains(usage.String(), name) {
			t.Errorf("-h does not document %s", name)
		}
	}
}

// TestFiftyCurlClients runs the command's wiring on loopback as the README's
// curl walk-through does: 50 streams on one interview see the current
// status at once and ONBOARDING_FINISHED when it happens, then end; the
// simulator counts at most one status call per interval.
func TestFiftyCurlClients(t *testing.T) {
	const interval = 200 * time.Millisecond
	in := start(t, "-poll-interval", interval.String(), "-secret", "a-test-secret-of-32-bytes-length", "-max-streams-per-interview", "64")
	base, simBase := in.base, in.sim

	var s struct{ URL, InterviewID, Token string }
	getJSON(t, base+"/onboarding-url", &s)
	if s.InterviewID == "" || s.Token == "" || !strings.HasPrefix(s.URL, simBase+"/flow/") {
		t.Fatalf("/onboarding-url answered %+v", s)
	}
	began := time.Now()
	var wg sync.WaitGroup
	firsts, lasts := make(chan string, 50), make(chan string, 50)
	for range 50 {
		resp := authGet(t, in.base+"/events", s.InterviewID, s.Token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream answered %s", resp.Status)
		}
		wg.Go(func() {
			defer resp.Body.Close()
			var data []string
			ssetest.Read(resp.Body, func(ev ssetest.Event) bool {
				if ev.Data != "" {
					if len(data) == 0 {
						firsts <- ev.Data
					}
					data = append(data, ev.Data)
				}
				return true
			})
			lasts <- strings.Join(data, " | ")
		})
	}
	for range 50 {
		if d := <-firsts; !strings.Contains(d, `"onboardingStatus":"UNKNOWN"`) {
			t.Fatalf("first event %s, want the current status", d)
		}
	}
	resp, err := http.Post(simBase+"/sim/interviews/"+s.InterviewID+"/status", "application/json", strings.NewReader(`{"onboardingStatus":"ONBOARDING_FINISHED"}`))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("simulator control: %v %v", resp, err)
	}
	resp.Body.Close()
	wg.Wait() // every stream ended by itself
	for range 50 {
		if d := <-lasts; strings.Count(d, "|") != 1 || !strings.Contains(d, `"onboardingStatus":"ONBOARDING_FINISHED"`) {
			t.Fatalf("stream saw %s, want it to end with ONBOARDING_FINISHED", d)
		}
	}
	elapsed := time.Since(began)
	var stats struct {
		StatusByInterview map[string]int64 `json:"status_by_interview"`
	}
	getJSON(t, simBase+"/sim/stats", &stats)
	if n, max := stats.StatusByInterview[s.InterviewID], int64(elapsed/interval)+1; n > max {
		t.Fatalf("50 clients over %v cost %d upstream status calls, want at most %d (one per interval)", elapsed, n, max)
	}
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
}

// authGet GETs an interview route with its token, as a client would.
func authGet(t *testing.T, url, interviewID, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"?interviewId="+interviewID, nil)
	req.Header.Set("X-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownEndsOpenStreams: on SIGTERM (ctx cancel) an open stream gets
// a retry hint and ends, and run returns within the grace period.
func TestShutdownEndsOpenStreams(t *testing.T) {
	in := start(t, "-shutdown-grace", "3s")
	var s struct{ InterviewID, Token string }
	getJSON(t, in.base+"/onboarding-url", &s)
	resp := authGet(t, in.base+"/events", s.InterviewID, s.Token)
	defer resp.Body.Close()
	var events []ssetest.Event
	stopped := make(chan error, 1)
	ssetest.Read(resp.Body, func(ev ssetest.Event) bool {
		if len(events) == 0 {
			if _, err := ssetest.Status(ev); err != nil {
				t.Errorf("first event: %v", err)
			}
			go func() { stopped <- in.stop() }() // SIGTERM
		}
		events = append(events, ev)
		return true
	})
	if len(events) < 2 || events[len(events)-1].Data != "" || events[len(events)-1].Retry == "" {
		t.Fatalf("stream ended without a retry hint: %+v", events)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestSlowAndOversizedHeaders: a client that trickles its headers is cut
// off after -read-header-timeout, and oversized headers are refused.
func TestSlowAndOversizedHeaders(t *testing.T) {
	in := start(t, "-read-header-timeout", "300ms")
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("slow client: read %d, %v; want the server to close the connection", n, err)
	}

	req, _ := http.NewRequest(http.MethodGet, in.base+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: %s, want 431", resp.Status)
	}
}

// TestSecretsStayOutOfLogs runs requests that succeed and fail, with an
// admin token configured, and checks that no token or credential is logged.
func TestSecretsStayOutOfLogs(t *testing.T) {
	const (
		adminToken    = "admin-token-that-must-not-leak"
		adminPassword = "admin-password-that-must-not-leak"
		clientSecret  = "client-secret-that-must-not-leak"
		webhookSecret = "webhook-secret-that-must-not-leak"
		apiToken      = "api-token-that-must-not-leak-0123"
	)
	for _, tc := range []struct {
		name    string
		args    []string
		secrets []string
	}{
		{"fixed admin token", []string{"-admin-token", adminToken}, []string{adminToken}},
		{"admin log-in, OAuth webhooks", []string{"-admin-email", "exec@example.com", "-admin-password", adminPassword,
			"-webhook-client-id", "incode", "-webhook-client-secret", clientSecret}, []string{adminPassword, clientSecret}},
		{"webhook secret in the path", []string{"-webhook-secret", webhookSecret, "-sim-webhook-auth", "path"}, []string{webhookSecret}},
		{"API token", []string{"-api-token", apiToken}, []string{apiToken, apiToken[:20]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := start(t, append(tc.args, "-log-level", "debug", "-poll-interval", "50ms")...)
			var s struct{ InterviewID, Token string }
			getJSON(t, in.base+"/onboarding-url", &s)
			resp := authGet(t, in.base+"/onboarding-status", s.InterviewID, s.Token) // an admin read, when admin mode is on
			resp.Body.Close()
			post(t, in.sim+"/sim/interviews/"+s.InterviewID+"/status", `{"onboardingStatus":"ONBOARDING_FINISHED"}`) // a webhook
			for _, h := range []http.Header{{"X-Token": {s.Token}}, {"X-Token": {s.Token + "x"}}, {"Authorization": {"Bearer " + s.Token[:30]}}, {}} {
				req, _ := http.NewRequest(http.MethodGet, in.base+"/fetch-score?interviewId="+s.InterviewID, nil)
				req.Header = h
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			// A wrong secret in a webhook path is logged as the route, not the path.
			post(t, in.base+"/webhooks/onboarding-status/"+webhookSecret+"-guess", `{}`)
			// Server API calls with the API token, and with a wrong one.
			for _, bearer := range []string{apiToken, apiToken[:20]} {
				req, _ := http.NewRequest(http.MethodGet, in.base+"/v1/sessions/"+s.InterviewID, nil)
				req.Header.Set("Authorization", "Bearer "+bearer)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			logs := in.logs.String()
			if !strings.Contains(logs, "request failed") {
				t.Fatalf("the failures were not logged at all: %s", logs)
			}
			for _, secret := range append(tc.secrets, s.Token, s.Token[:30], gateway.SimulatorAPIKey) {
				if strings.Contains(logs, secret) {
					t.Errorf("%q appears in the logs:\n%s", secret, logs)
				}
			}
		})
	}
}

// TestBackendOnlySessions runs pushgate as production does: the API tokens
// from the environment, public sessions off. The browser cannot start a
// session; the backend can, with either token.
func TestBackendOnlySessions(t *testing.T) {
	cfg, err := parseConfig([]string{"-public-sessions=false"}, func(k string) string {
		return map[string]string{"PUSHGATE_API_TOKEN": "first-api-token-0123456789, second-api-token-0123456789"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.gw.HTTP.BackendSessionsOnly || len(cfg.gw.HTTP.APITokens) != 2 {
		t.Fatalf("config %+v", cfg.gw.HTTP)
	}
	in := start(t, "-public-sessions=false", "-api-token", "first-api-token-0123456789,second-api-token-0123456789")
	resp, err := http.Get(in.base + "/onboarding-url")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/onboarding-url: %s, want 404", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, in.base+"/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer second-api-token-0123456789")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ InterviewID, URL, Token string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.InterviewID == "" || created.Token == "" || created.URL == "" {
		t.Fatalf("POST /v1/sessions: %s %+v", resp.Status, created)
	}
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestPreviousSecretEndsForGood: tokens of the previous secret verify
// until -previous-secret-until, and not after it, however often the
// process restarts.
func TestPreviousSecretEndsForGood(t *testing.T) {
	t.Parallel() // a grace of its own
	const oldSecret = "the-old-secret-of-32-bytes-long."
	old, err := sse.NewTokens([]byte(oldSecret), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := old.Issue("some-interview")
	until := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	args := []string{"-secret", "a-test-secret-of-32-bytes-length", "-previous-secret", oldSecret, "-previous-secret-until", until.Format(time.RFC3339)}
	verifies := func(in *instance) bool {
		resp := authGet(t, in.base+"/onboarding-status", "some-interview", tok)
		resp.Body.Close()
		return resp.StatusCode != http.StatusUnauthorized // 404: the token passed, the interview is unknown
	}
	in := start(t, args...)
	if !verifies(in) {
		t.Fatal("a token of the previous secret is refused before -previous-secret-until")
	}
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	for range 2 { // a restart, and another: the end does not move
		in := start(t, args...)
		if verifies(in) {
			t.Fatal("a token of the previous secret verifies after -previous-secret-until")
		}
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// postJSON POSTs a JSON body with the headers in hdr (name/value pairs)
// and returns the status and body of the answer.
func postJSON(t *testing.T, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post POSTs a JSON body and drops the answer.
func post(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// instance is a pushgate run by run() on loopback ports, as main runs it.
type instance struct {
	base, sim string
	logs      *testenv.Buffer
	stop      func() error // cancels run (SIGTERM) and returns its error
}

// start runs pushgate with args in simulator mode. The listeners are bound
// before run starts, so the instance takes requests at once.
func start(t *testing.T, args ...string) *instance {
	t.Helper()
	cfg, err := parseConfig(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return startConfig(t, cfg)
}

// startConfig runs pushgate with cfg in simulator mode, as start does.
func startConfig(t *testing.T, cfg config) *instance {
	t.Helper()
	ls, err := gateway.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw, sim := ls.Gateway, ls.Simulator
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		done <- run(ctx, cfg, log, &gateway.Listeners{Gateway: gw, Simulator: sim})
	}()
	scheme := "http://"
	if cfg.gw.TLS.CertFile != "" {
		scheme = "https://"
	}
	in := &instance{base: scheme + gw.Addr().String(), sim: "http://" + sim.Addr().String(), logs: logs}
	var once sync.Once
	var runErr error
	in.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(cfg.gw.ShutdownGrace + time.Second):
				runErr = errors.New("no clean exit within the shutdown grace period")
			}
			http.DefaultClient.CloseIdleConnections()
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := in.stop(); err != nil {
			t.Error(err)
		}
	})
	return in
}

// TestMetricsAreScraped walks a flow, trips a rate limit and a stream cap,
// then scrapes /metrics as Prometheus would and reads what happened.
func TestMetricsAreScraped(t *testing.T) {
	in := start(t, "-poll-interval", "100ms", "-session-burst", "1", "-sessions-per-minute", "1", "-max-streams-per-interview", "1")
	var s struct{ InterviewID, Token string }
	getJSON(t, in.base+"/onboarding-url", &s)
	if resp, err := http.Get(in.base + "/onboarding-url"); err != nil || resp.StatusCode != 429 {
		t.Fatalf("second session: %v %v, want 429", resp, err)
	} else {
		resp.Body.Close()
	}
	open := func() *http.Response { return authGet(t, in.base+"/events", s.InterviewID, s.Token) }
	stream := open()
	defer stream.Body.Close()
	br := bufio.NewReader(stream.Body)
	br.ReadString('\n')
	if refused := open(); refused.StatusCode != 429 {
		t.Fatalf("second stream: %d, want 429", refused.StatusCode)
	} else {
		refused.Body.Close()
	}
	scrape := func() string { return scrape(t, http.DefaultClient, in.base) }
	text := scrape()
	for series, want := range map[string]float64{
		`pushgate_sse_connections`:                                         1,
		`pushgate_sse_streams`:                                             1,
		`pushgate_pollers_active`:                                          1,
		`pushgate_rate_limited_total{route="/onboarding-url"}`:             1,
		`pushgate_sse_rejected_total{reason="interview_limit"}`:            1,
		`pushgate_http_requests_total{code="200",route="/onboarding-url"}`: 1,
		`pushgate_http_requests_total{code="429",route="/onboarding-url"}`: 1,
		`pushgate_upstream_calls_total{endpoint="start",outcome="ok"}`:     1,
		`pushgate_ready`: 1,
	} {
		if got := metricValue(text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	resp, err := http.Post(in.sim+"/sim/interviews/"+s.InterviewID+"/status", "application/json", strings.NewReader(`{"onboardingStatus":"ONBOARDING_FINISHED"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	io.ReadAll(br) // the stream ends after ONBOARDING_FINISHED
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(scrape(), "pushgate_sse_connections") != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	text = scrape()
	for series, atLeast := range map[string]float64{
		`pushgate_status_changes_total`:                                    2,
		`pushgate_sse_events_published_total`:                              1,
		`pushgate_sse_events_delivered_total`:                              2,
		`pushgate_upstream_calls_total{endpoint="status",outcome="ok"}`:    1,
		`pushgate_upstream_call_duration_seconds_count{endpoint="status"}`: 1,
		`pushgate_webhooks_total{result="applied"}`:                        1, // the simulator pushed the finish
		`process_resident_memory_bytes`:                                    1,
		`pushgate_sse_delivery_seconds_count`:                              1, // the finish, published and written
		`pushgate_max_streams`:                                             1,
	} {
		if got := metricValue(text, series); got < atLeast {
			t.Errorf("%s = %v, want at least %v", series, got, atLeast)
		}
	}
	if got := metricValue(text, "pushgate_sse_connections"); got != 0 {
		t.Errorf("pushgate_sse_connections = %v after the stream ended", got)
	}
	b := build()
	info := fmt.Sprintf(`pushgate_build_info{goversion=%q,revision=%q,version=%q}`, runtime.Version(), cmp.Or(b.Revision, "unknown"), cmp.Or(b.Version, "unknown"))
	if got := metricValue(text, info); got != 1 {
		t.Errorf("%s = %v, want 1", info, got)
	}
}

// scrape returns base's /metrics, as Prometheus reads it.
func scrape(t *testing.T, client *http.Client, base string) string {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s/metrics: %s", base, resp.Status)
	}
	return string(body)
}

// metricValue reads one series (a name, with its labels if any) of a
// scrape; -1 when it is absent.
func metricValue(text, series string) float64 {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// TestDrainDelay: on SIGTERM with -drain-delay, /readyz turns 503 first
// while streams and the API keep working; then streams end.
func TestDrainDelay(t *testing.T) {
	in := start(t, "-drain-delay", "500ms", "-shutdown-grace", "3s")
	var s struct{ InterviewID, Token string }
	getJSON(t, in.base+"/onboarding-url", &s)
	stopped := make(chan error, 1)
	go func() { stopped <- in.stop() }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, err := http.Get(in.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 503 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never turned 503 after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp := authGet(t, in.base+"/onboarding-status", s.InterviewID, s.Token)
	if resp.StatusCode != 200 {
		t.Fatalf("the API during the drain delay: %s, want 200", resp.Status)
	}
	resp.Body.Close()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestSlowClientsCannotHoldTheNode: a request that declares a body and
// never sends it is answered or cut within -read-timeout, and one address
// holds at most -max-conns-per-client connections, while another address
// is still served.
func TestSlowClientsCannotHoldTheNode(t *testing.T) {
	in := start(t, "-read-timeout", "1s", "-max-conns-per-client", "4")
	addr := strings.TrimPrefix(in.base, "http://")
	dial := func(source string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// readAll returns what the server sent until it closed, or "" when it
	// neither answered nor closed within limit.
	readAll := func(c net.Conn, limit time.Duration) (string, bool) {
		c.SetReadDeadline(time.Now().Add(limit))
		b, err := io.ReadAll(c)
		var ne net.Error
		return string(b), !(errors.As(err, &ne) && ne.Timeout())
	}

	c := dial("127.0.0.3") // its own address: its slot is freed a moment after it is cut
	io.WriteString(c, "POST /onboarding-url HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n")
	if _, done := readAll(c, 5*time.Second); !done {
		t.Fatal("a request whose body never comes still holds its connection after 5s (-read-timeout 1s)")
	}
	c.Close()

	var held []net.Conn
	for range 4 {
		c := dial("127.0.0.1")
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") // kept alive, idle
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond)
	over := dial("127.0.0.1")
	io.WriteString(over, "GET /onboarding-status HTTP/1.1\r\nHost: x\r\n\r\n") // a probe would be served: see TestProbesPassTheConnectionCaps
	if answer, _ := readAll(over, 3*time.Second); !strings.HasPrefix(answer, "HTTP/1.1 429") || !strings.Contains(answer, "client_connection_limit") {
		t.Fatalf("a fifth connection from one address: %q, want 429 at once", answer)
	}
	other := dial("127.0.0.2")
	io.WriteString(other, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if answer, _ := readAll(other, 3*time.Second); !strings.HasPrefix(answer, "HTTP/1.1 200") {
		t.Fatalf("another address: %q, want 200", answer)
	}
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
}
