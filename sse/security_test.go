package sse_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/sse"
)

// TestCrossSiteRefused: another site cannot make its visitors start paid
// sessions or read statuses; the gateway's own page, a listed origin and
// clients that are not browsers can.
func TestCrossSiteRefused(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{AllowedOrigins: []string{allowedOrigin}}})
	own := g.url
	cases := []struct {
		name   string
		header http.Header
		code   int
	}{
		{"another site's page", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, 403},
		{"another site, no Origin", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"a sandboxed frame", http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"cross-site"}}, 403},
		{"the gateway's own page", http.Header{"Origin": {own}, "Sec-Fetch-Site": {"same-origin"}}, 200},
		{"the same site", http.Header{"Sec-Fetch-Site": {"same-site"}}, 200},
		{"a listed origin", http.Header{"Origin": {allowedOrigin}, "Sec-Fetch-Site": {"cross-site"}}, 200},
		{"typed in the address bar", http.Header{"Sec-Fetch-Site": {"none"}}, 200},
		{"curl", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := g.sim.Stats().Start
			code, _, body := g.get("/onboarding-url", c.header)
			if code != c.code {
				t.Fatalf("%d %s, want %d", code, body, c.code)
			}
			started := g.sim.Stats().Start - before
			if c.code == 403 && (started != 0 || !strings.Contains(body, `"code":"cross_site"`)) {
				t.Fatalf("refused, yet %d sessions started upstream; body %s", started, body)
			}
		})
	}
}

// TestNodeSessionCeiling: many addresses together cannot start sessions
// faster than the node-wide ceiling, whatever each address's own limit.
func TestNodeSessionCeiling(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{SessionsPerMinute: 60, SessionBurst: 5, NodeSessionsPerMinute: 6, NodeSessionBurst: 3, ClientIPHeader: "X-Forwarded-For"}})
	from := func(ip string) (int, http.Header, string) {
		return g.get("/onboarding-url", http.Header{"X-Forwarded-For": {ip}})
	}
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		if code, _, body := from(ip); code != 200 {
			t.Fatalf("session %d: %d %s", i, code, body)
		}
	}
	code, h, body := from("198.51.100.4")
	if code != 429 || h.Get("Retry-After") != "10" || !strings.Contains(body, `"code":"node_rate_limited"`) {
		t.Fatalf("a fourth address: %d %v %s, want 429 from the node's ceiling", code, h, body)
	}
	if n := g.sim.Stats().Start; n != 3 {
		t.Fatalf("%d upstream sessions, want 3", n)
	}
}
