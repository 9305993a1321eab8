package sse_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/sse"
)

// TestRefusalsLogSampled: a flood of refused requests (wrong webhook
// credentials, then their 429s; unknown routes) writes one Info line per
// kind, not one per request.
func TestRefusalsLogSampled(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{WebhookClientID: clientID, WebhookClientSecret: clientSecret}, keepLogs: true})
	codes := map[int]int{}
	for i := range 300 {
		code, _, _ := g.post("/webhooks/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", "Authorization", basic("X", strings.Repeat("y", i%7)))
		codes[code]++
		code, _, _ = g.get("/admin/"+strings.Repeat("a", i%5), nil)
		codes[code]++
	}
	if codes[http.StatusUnauthorized] != 10 || codes[http.StatusTooManyRequests] != 290 || codes[http.StatusNotFound] != 300 {
		t.Fatalf("answers %v, want 10 401s, 290 429s, 300 404s", codes)
	}
	logs := g.logs.String()
	if n := strings.Count(logs, `msg="request failed"`); n != 3 {
		t.Fatalf("%d log lines for 600 refusals of 3 kinds, want 3:\n%s", n, logs)
	}
	for _, want := range []string{"status=401", "status=429", "status=404"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no line with %s:\n%s", want, logs)
		}
	}
}

// TestRefusedOriginLogged: a page on an origin left out of
// -allowed-origins gets a blank page in the browser; the gateway says why
// in one Warn line that names the origin and the flag, once a minute at
// most whatever the requests (preflights, streams, a Referer's page, other
// made-up origins).
func TestRefusedOriginLogged(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{AllowedOrigins: []string{"https://listed.example"}}, keepLogs: true})
	s := g.start()
	refused := []struct {
		method, path string
		header       http.Header
	}{
		{"GET", "/events?interviewId=" + s.InterviewID, http.Header{"Origin": {"https://app.example"}, "X-Token": {s.Token}}},
		{"OPTIONS", "/events", http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"GET"}}},
		{"GET", "/onboarding-status?interviewId=" + s.InterviewID, http.Header{"Referer": {"https://app.example/verify"}, "X-Token": {s.Token}}},
		{"GET", "/events?interviewId=" + s.InterviewID, http.Header{"Origin": {"https://made-up.example"}, "X-Token": {s.Token}}},
	}
	for range 50 {
		for _, r := range refused {
			req, _ := http.NewRequest(r.method, g.url+r.path, nil)
			req.Header = r.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s %s with %v: %s, want 403", r.method, r.path, r.header, resp.Status)
			}
		}
	}
	// A listed origin is no refusal.
	if code, _, body := g.get("/onboarding-status?interviewId="+s.InterviewID, http.Header{"Origin": {"https://listed.example"}, "X-Token": {s.Token}}); code != http.StatusOK {
		t.Fatalf("listed origin: %d %s", code, body)
	}
	logs := g.logs.String()
	const msg = `msg="refused a browser request: its page's origin is not in -allowed-origins"`
	if n := strings.Count(logs, msg); n != 1 {
		t.Fatalf("%d lines about refused origins for 200 refusals within a minute, want 1:\n%s", n, logs)
	}
	at := strings.Index(logs, msg)
	line := logs[strings.LastIndexByte(logs[:at], '\n')+1:]
	line = line[:strings.IndexByte(line, '\n')]
	for _, want := range []string{"level=WARN", "origin=https://app.example", "path=/events", "add it to -allowed-origins"} {
		if !strings.Contains(line, want) {
			t.Errorf("the line %q lacks %q", line, want)
		}
	}
}
