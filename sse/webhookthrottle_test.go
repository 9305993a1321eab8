package sse_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
)

// TestWebhookSecretsAtLeast32Bytes: a webhook secret short enough to
// guess is refused when the Handler is made, whichever way it is used.
func TestWebhookSecretsAtLeast32Bytes(t *testing.T) {
	secret32 := strings.Repeat("s", 32)
	for _, tc := range []struct {
		name string
		cfg  sse.Config
		want string // "" when taken
	}{
		{"a one-byte secret", sse.Config{WebhookSecret: "a"}, "WebhookSecret must be at least 32 bytes"},
		{"31 bytes", sse.Config{WebhookSecret: secret32[:31]}, "WebhookSecret must be at least 32 bytes"},
		{"32 bytes", sse.Config{WebhookSecret: secret32}, ""},
		{"a one-byte client secret", sse.Config{WebhookClientID: "X", WebhookClientSecret: "Y"}, "WebhookClientSecret must be at least 32 bytes"},
		{"a 32-byte client secret", sse.Config{WebhookClientID: "X", WebhookClientSecret: secret32}, ""},
		{"a short header value", sse.Config{WebhookHeaderName: "X-Hook", WebhookHeaderValue: secret32[:31]}, "at least 32 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Upstream, cfg.Statuses, cfg.Broker, cfg.Tokens = noUpstream{}, &poller.Manager{}, &sse.Broker{}, &sse.Tokens{}
			cfg.FlowOrigins = []string{"https://flows.example"}
			_, err := sse.New(cfg)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("sse.New: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestWebhookGuessesThrottled: wrong webhook credentials from one address
// are answered 429 after a burst of 10, on the token endpoint and every
// webhook route, with Retry-After and a JSON body, and counted; the right
// credentials never count, from that address or any other.
func TestWebhookGuessesThrottled(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{
		WebhookSecret: webhookSecret, WebhookClientID: clientID, WebhookClientSecret: clientSecret,
		TrustedProxies: loopbackProxy,
	}})
	const form = "application/x-www-form-urlencoded"
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
	token := func(addr, id, secret string) (int, http.Header, string) {
		return g.post("/webhooks/token", form, "grant_type=client_credentials", append(from(addr), "Authorization", basic(id, secret))...)
	}

	// Incode's own calls, many of them, never count.
	for i := range 50 {
		if code, _, body := token("198.51.100.7", clientID, clientSecret); code != 200 {
			t.Fatalf("right credentials, call %d: %d %s", i, code, body)
		}
		if code, _, body := g.post("/webhooks/onboarding-status/"+webhookSecret, "application/json", hook("someone", "UNKNOWN"), from("198.51.100.7")...); code != 200 {
			t.Fatalf("right path secret, call %d: %d %s", i, code, body)
		}
	}

	// The probe's loop: short Basic credentials from one address.
	first429 := -1
	for i := range 200 {
		code, h, body := token("203.0.113.5", "X", fmt.Sprint(i))
		if code == 401 {
			continue
		}
		var e struct{ Error, Code string }
		if code != 429 || h.Get("Retry-After") == "" || json.Unmarshal([]byte(body), &e) != nil || e.Code != "webhook_rate_limited" {
			t.Fatalf("guess %d: %d (Retry-After %q) %s, want 401 or 429 with Retry-After and a JSON error", i, code, h.Get("Retry-After"), body)
		}
		if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 || ra > 12 {
			t.Fatalf("Retry-After %q, want the 12 s one failure takes to be forgiven (5 a minute)", h.Get("Retry-After"))
		}
		if first429 < 0 {
			first429 = i
		}
	}
	if first429 != 10 {
		t.Fatalf("the first 429 came at guess %d (-1: none of 200), want 10 (a burst of 10 failures)", first429)
	}
	// Throttled, the address is refused on every webhook route, whatever
	// it sends: the right secret would otherwise tell a guess right.
	for _, c := range []struct{ path, auth string }{
		{"/webhooks/token", basic(clientID, clientSecret)},
		{"/webhooks/onboarding-status", "Bearer " + webhookSecret},
		{"/webhooks/onboarding-status/" + webhookSecret, ""},
		{"/webhooks/onboarding-status/a-wrong-secret", ""},
	} {
		code, h, body := g.post(c.path, form, "grant_type=client_credentials", append(from("203.0.113.5"), "Authorization", c.auth)...)
		if code != 429 || h.Get("Retry-After") == "" || !strings.Contains(body, `"code":"webhook_rate_limited"`) {
			t.Fatalf("%s from the throttled address: %d %s, want 429", c.path, code, body)
		}
	}
	// Every other address is unaffected: the upstream's calls go on.
	if code, _, body := token("198.51.100.7", clientID, clientSecret); code != 200 {
		t.Fatalf("the upstream's address after another's guesses: %d %s", code, body)
	}
	for _, path := range []string{"/webhooks/token", "/webhooks/onboarding-status/{secret}"} {
		if n := pollertest.Metric(t, g.metrics, "pushgate_rate_limited_total", "route", path); n < 1 {
			t.Errorf("pushgate_rate_limited_total{route=%q} = %v, want the refusals counted", path, n)
		}
	}
	if n := pollertest.Metric(t, g.metrics, "pushgate_rate_limited_total", "route", "/webhooks/token"); n != 190+1 {
		t.Errorf("pushgate_rate_limited_total{route=\"/webhooks/token\"} = %v, want 191", n)
	}

	// The bearer and the path secret count their failures the same way.
	for _, c := range []struct {
		name, addr, path, auth string
	}{
		{"wrong bearer", "203.0.113.6", "/webhooks/onboarding-status", "Bearer guess"},
		{"wrong path secret", "203.0.113.7", "/webhooks/onboarding-status/guess", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			codes := map[int]int{}
			for range 30 {
				code, _, _ := g.post(c.path, "application/json", hook("someone", "UNKNOWN"), append(from(c.addr), "Authorization", c.auth)...)
				codes[code]++
			}
			if codes[401] != 10 || codes[429] != 20 {
				t.Fatalf("30 wrong calls: %v, want 10 401s then 429s", codes)
			}
		})
	}
}
