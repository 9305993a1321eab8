package sse_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/sse"
)

// TestPathSecretNeverLogged: the webhook's path secret, sent on a path
// set up with a slip (a trailing slash, a dot segment, a double slash,
// another case, a proxy's prefix) or with another method, reaches neither
// the log nor a metric label, whatever the answer: 404, 405, 413, or a
// draining node's 503. Each refusal is logged (at Debug when sampled out).
func TestPathSecretNeverLogged(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{WebhookSecret: webhookSecret}, keepLogs: true, debugLogs: true})
	paths := []string{
		"/webhooks/onboarding-status/" + webhookSecret + "/",
		"/webhooks/onboarding-status/./" + webhookSecret,
		"//webhooks/onboarding-status/" + webhookSecret,
		"/Webhooks/onboarding-status/" + webhookSecret,
		"/WEBHOOKS/ONBOARDING-STATUS/" + webhookSecret,
		"/webhooks/onboarding-status/../onboarding-status/" + webhookSecret,
		"/pushgate/webhooks/onboarding-status/" + webhookSecret,
		"/webhooks/" + webhookSecret,
		"/" + webhookSecret,
		"/webhooks/onboarding-status/" + webhookSecret, // with the other methods
	}
	methods := []string{http.MethodPost, http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions}
	send := func(method, path, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, g.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodOptions {
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Access-Control-Request-Method", "POST")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	answers := map[int]int{}
	sent := 0
	for _, path := range paths {
		for _, m := range methods {
			if m == http.MethodPost && path == "/webhooks/onboarding-status/"+webhookSecret {
				continue // the right call: 200, logged as the route
			}
			answers[send(m, path, hook("someone", "UNKNOWN"))]++
			sent++
		}
		answers[send(http.MethodPost, path, strings.Repeat("x", 65<<10))]++ // too large: refused before routing
		sent++
	}
	g.handler.Drain()
	for _, path := range paths {
		answers[send(http.MethodPost, path, hook("someone", "UNKNOWN"))]++
		sent++
	}
	if answers[404] == 0 || answers[405] == 0 || answers[413] == 0 || answers[503] == 0 {
		t.Fatalf("answers %v: want 404s, 405s, 413s and 503s among them", answers)
	}
	logs := g.logs.String()
	if n := strings.Count(logs, "request failed"); n < sent-answers[200]-answers[204] {
		t.Fatalf("%d refusals logged, want each of the %d (answers %v)", n, sent, answers)
	}
	for _, s := range []string{webhookSecret, webhookSecret[:20], webhookSecret[20:]} {
		if strings.Contains(logs, s) {
			t.Fatalf("the path secret (or half of it) appears in the log:\n%s", logs)
		}
	}
	families, err := g.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), webhookSecret[:16]) {
					t.Fatalf("the path secret appears in %s{%s=%q}", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}
