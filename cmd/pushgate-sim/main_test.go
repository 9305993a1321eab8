package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs the command with args until the test ends, and returns the
// base URL it listens on, with a wildcard host replaced by 127.0.0.1.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	out, stdout := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, stdout, io.Discard)
		stdout.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatal(err, <-done)
	}
	go io.Copy(io.Discard, out)
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("no exit after cancel")
		}
	})
	u, err := url.Parse(strings.TrimSpace(line[strings.Index(line, "http://"):]))
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
	}
	return u.String()
}

// call sends a request and returns its status code and body; hdr holds
// name/value pairs.
func call(t *testing.T, method, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
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

// start opens a session and returns its interview id and onboarding URL.
func start(t *testing.T, base string) (id, flowURL string) {
	t.Helper()
	code, body := call(t, "POST", base+"/omni/start", `{"configurationId":"f"}`, "api-version", "1.0", "x-api-key", "k")
	var s struct{ InterviewID, Token string }
	if code != 200 || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("start: %d %s", code, body)
	}
	code, body = call(t, "GET", base+"/0/omni/onboarding-url", "", "api-version", "1.0", "X-Incode-Hardware-Id", s.Token)
	var u struct{ URL string }
	if code != 200 || json.Unmarshal([]byte(body), &u) != nil {
		t.Fatalf("onboarding-url: %d %s", code, body)
	}
	return s.InterviewID, u.URL
}

// TestRunServesAndStops starts the standalone simulator with faults from
// the command line, uses it over HTTP and stops it as SIGTERM would.
func TestRunServesAndStops(t *testing.T) {
	base := serve(t, "-addr", "127.0.0.1:0", "-faults", `{"error_rate":1,"status":503}`)
	code, _ := call(t, "POST", base+"/omni/start", `{"configurationId":"f"}`, "api-version", "1.0", "x-api-key", "k")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("start under -faults: %d, want 503", code)
	}
	code, body := call(t, "GET", base+"/sim/stats", "")
	var stats struct{ Start int }
	json.Unmarshal([]byte(body), &stats)
	if code != 200 || stats.Start != 1 {
		t.Fatalf("stats %d %s, want the start counted", code, body)
	}
}

// TestRunBeyondLoopback listens on every address, as the Docker image
// does, and calls over loopback: the control API answers only with
// -control-token, and is off without it, while the flow page and its steps
// work with the key of the onboarding URL either way.
func TestRunBeyondLoopback(t *testing.T) {
	const token = "control-token-0123456789"
	tests := []struct {
		name  string
		args  []string
		token bool // the control API takes the token
	}{
		{"no control token", nil, false},
		{"control token", []string{"-control-token", token}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := serve(t, append([]string{"-addr", "0.0.0.0:0"}, tt.args...)...)
			id, flowURL := start(t, base)
			stats := base + "/sim/stats"
			if code, body := call(t, "GET", stats, ""); code != 403 || !strings.Contains(body, "control token") {
				t.Errorf("control API without a token: %d %s, want 403 saying how to use it", code, body)
			}
			code, body := call(t, "GET", stats, "", "Authorization", "Bearer "+token)
			if tt.token && code != 200 || !tt.token && code != 403 {
				t.Errorf("control API with the token: %d %s", code, body)
			}
			if code, _ := call(t, "GET", flowURL, ""); code != 200 {
				t.Errorf("flow page %s: %d", flowURL, code)
			}
			key := flowURL[strings.Index(flowURL, "key=")+len("key="):]
			code, body = call(t, "POST", base+"/flow/"+id+"/status", `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, "X-Flow-Key", key)
			if code != 204 {
				t.Errorf("flow step with the key: %d %s", code, body)
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-faults", `{"error_rate":2}`}, {"-faults", `nope`}, {"stray"}, {"-order", "random"}, {"-admin-email", "a@b.c"},
		{"-control-token", "too-short"},
		{"-webhook-retry-scale", "0"}, {"-webhook-retry-scale", "-1"}, {"-webhook-retry-scale", "NaN"}, {"-webhook-retry-scale", "+Inf"},
		{"-flow-timeout", "-1s"},
		{"-webhook-header", "X-Hook"}, {"-webhook-header", ": v"}, {"-webhook-header", "X-Hook:"}, {"-webhook-header", "X Hook: v"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// TestRunFlowTimeoutAndRetries: with -flow-timeout a session left alone
// expires and its webhook announces EXPIRED; with -webhook-retry-scale the
// failed call is retried within milliseconds.
func TestRunFlowTimeoutAndRetries(t *testing.T) {
	type hook struct {
		InterviewID      string `json:"interviewId"`
		OnboardingStatus string `json:"onboardingStatus"`
		FlowID           string `json:"flowId"`
	}
	calls := make(chan hook, 8)
	var n atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c hook
		json.NewDecoder(r.Body).Decode(&c)
		calls <- c
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	base := serve(t, "-addr", "127.0.0.1:0", "-webhook-url", receiver.URL, "-webhook-retry-scale", "0.001", "-flow-timeout", "50ms")
	id, _ := start(t, base)
	for i := range 2 { // the failed call, then its retry
		select {
		case c := <-calls:
			if c != (hook{id, "EXPIRED", "f"}) {
				t.Fatalf("call %d: %+v, want EXPIRED of %s with flowId f", i, c, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d never came", i)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := call(t, "GET", base+"/sim/stats", "")
		var st struct {
			Webhooks          int `json:"webhooks"`
			WebhookRetries    int `json:"webhook_retries"`
			WebhooksDelivered int `json:"webhooks_delivered"`
			FlowTimeouts      int `json:"flow_timeouts"`
		}
		json.Unmarshal([]byte(body), &st)
		if code == 200 && st.Webhooks == 1 && st.WebhookRetries == 1 && st.WebhooksDelivered == 1 && st.FlowTimeouts == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhookHeaderFlag(t *testing.T) {
	_, _, cfg, err := parseFlags([]string{"-webhook-header", "X-Incode-Hook: a b", "-webhook-header", "x-other:c"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.WebhookHeaders; got.Get("X-Incode-Hook") != "a b" || got.Get("X-Other") != "c" || len(got) != 2 {
		t.Fatalf("headers %v, want X-Incode-Hook: a b and X-Other: c", got)
	}
}
