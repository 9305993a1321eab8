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
