package sse_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream/simulator"
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
	g := newGateway(t, options{handler: sse.Config{SessionsPerMinute: 60, SessionBurst: 5, NodeSessionsPerMinute: 6, NodeSessionBurst: 3, ClientIPHeader: "X-Forwarded-For", TrustedProxies: loopbackProxy}})
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

// TestScoreReadsCostOneCall: 200 score reads with one token cost one
// upstream call, and the token is slowed down; other tokens of the same
// interview read the kept score; a manual review decided later makes the
// next read fetch the new score.
func TestScoreReadsCostOneCall(t *testing.T) {
	g := newGateway(t, options{webhooks: true}) // a review decided after the flow arrives by webhook
	s := g.start()
	g.setStatus(s.InterviewID, "ONBOARDING_FINISHED")
	eventually(t, "the flow finished", func() bool {
		u, _ := g.statuses.Current(t.Context(), s.InterviewID)
		return u.Status == "ONBOARDING_FINISHED"
	})
	before := g.sim.Stats().Score
	codes := map[int]int{}
	for range 200 {
		code, _, _ := g.get("/fetch-score?interviewId="+s.InterviewID, tokenHeader(s.Token))
		codes[code]++
	}
	if n := g.sim.Stats().Score - before; n != 1 || codes[200] != 10 || codes[429] != 190 {
		t.Fatalf("200 reads with one token: %d upstream score calls, answers %v; want 1 call, 10 answers (the burst), then 429", n, codes)
	}
	for i := range 5 {
		other, err := sse.NewTokens([]byte(tokenSecret), time.Duration(50+i)*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := other.Issue(s.InterviewID) // other tabs, other tokens (another expiry each)
		if code, _, body := g.get("/fetch-score?interviewId="+s.InterviewID, tokenHeader(tok)); code != 200 {
			t.Fatalf("another token: %d %s", code, body)
		}
	}
	if n := g.sim.Stats().Score - before; n != 1 {
		t.Fatalf("%d upstream score calls after other tokens read it, want the one", n)
	}
	g.setStatus(s.InterviewID, "MANUAL_REVIEW_REJECTED")
	eventually(t, "the review decided", func() bool {
		u, _ := g.statuses.Current(t.Context(), s.InterviewID)
		return u.Status == "MANUAL_REVIEW_REJECTED"
	})
	other, _ := sse.NewTokens([]byte(tokenSecret), 40*time.Minute)
	tok, _ := other.Issue(s.InterviewID)
	if code, _, body := g.get("/fetch-score?interviewId="+s.InterviewID, tokenHeader(tok)); code != 200 {
		t.Fatalf("after the review: %d %s", code, body)
	}
	if n := g.sim.Stats().Score - before; n != 2 {
		t.Fatalf("%d upstream score calls after the review, want a second one", n)
	}
}

// loopbackProxy trusts the tests' own requests as a reverse proxy's.
var loopbackProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// TestForwardedHeadersFromTrustedProxiesOnly: a client that reaches the
// gateway directly cannot name its own address or claim TLS; behind a
// trusted proxy only the header the operator named counts (a proxy passes
// the others on from the client), in every form proxies write it, and
// IPv6 clients are limited by their /64.
func TestForwardedHeadersFromTrustedProxiesOnly(t *testing.T) {
	limited := sse.Config{SessionsPerMinute: 1, SessionBurst: 1, WebhookSecret: webhookSecret,
		WebhookSources: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	start := func(g *gateway, h http.Header) (int, http.Header, string) { return g.get("/onboarding-url", h) }
	secure := func(h http.Header) bool { return strings.Contains(strings.ToLower(h.Get("Set-Cookie")), "; secure") }
	type step struct {
		name   string
		header http.Header
		code   int
		secure bool
	}
	run := func(t *testing.T, g *gateway, steps []step) {
		t.Helper()
		for _, c := range steps {
			code, h, body := start(g, c.header)
			if code != c.code || (code == 200 && secure(h) != c.secure) {
				t.Errorf("%s: %d %s, Secure cookie %v; want %d, Secure %v", c.name, code, body, secure(h), c.code, c.secure)
			}
		}
	}

	t.Run("direct client", func(t *testing.T) {
		g := newGateway(t, options{handler: limited})
		run(t, g, []step{
			{"claims of its own", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=198.51.100.1;proto=https"}}, 200, false},
			{"a spoofed X-Forwarded-For", http.Header{"X-Forwarded-For": {"198.51.100.2"}}, 429, false},
		})
		if code, body := postWebhookFrom(g, "10.1.2.3"); code != 403 {
			t.Fatalf("a webhook claiming an allowed address: %d %s, want 403", code, body)
		}
	})
	t.Run("behind a trusted proxy writing X-Forwarded-For", func(t *testing.T) {
		cfg := limited
		cfg.TrustedProxies = loopbackProxy
		g := newGateway(t, options{handler: cfg})
		run(t, g, []step{
			{"X-Forwarded-For, https", http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1"}, "X-Forwarded-Proto": {"https"}}, 200, true},
			{"the same client again", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, 429, false},
			{"the same client, with a Forwarded of its own", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=192.0.2.1;proto=https"}}, 429, false},
			{"ip:port", http.Header{"X-Forwarded-For": {"198.51.100.3:5555"}}, 200, false},
			{"IPv6", http.Header{"X-Forwarded-For": {"[2001:db8::1]:4711"}}, 200, false},
			{"another address of that /64", http.Header{"X-Forwarded-For": {"2001:db8::2"}}, 429, false},
			{"another /64", http.Header{"X-Forwarded-For": {"2001:db8:0:1::1"}}, 200, false},
			{"a chain through two trusted proxies", http.Header{"X-Forwarded-For": {"198.51.100.4, 127.0.0.2"}}, 200, false},
			{"that client through one", http.Header{"X-Forwarded-For": {"198.51.100.4"}}, 429, false},
			{"an entry left of one the proxy could not write", http.Header{"X-Forwarded-For": {"192.0.2.7, unknown"}}, 200, false},
			{"another one so", http.Header{"X-Forwarded-For": {"192.0.2.8, unknown"}}, 429, false}, // both are the proxy's
		})
		if code, body := postWebhookFrom(g, "10.1.2.3"); code != 200 {
			t.Fatalf("a webhook from an allowed address, through the proxy: %d %s", code, body)
		}
	})
	t.Run("behind a trusted proxy writing Forwarded", func(t *testing.T) {
		cfg := limited
		cfg.TrustedProxies, cfg.ClientIPHeader = loopbackProxy, "Forwarded"
		g := newGateway(t, options{handler: cfg})
		run(t, g, []step{
			{"RFC 7239, IPv6 with a port, https", http.Header{"Forwarded": {`for="[2001:db8::1]:4711";proto=https`}}, 200, true},
			{"a client's X-Forwarded-For is not read", http.Header{"Forwarded": {`for="[2001:db8::1]"`}, "X-Forwarded-For": {"198.51.100.9"}, "X-Forwarded-Proto": {"https"}}, 429, false},
			{"a client's entry left of an obfuscated one", http.Header{"Forwarded": {"for=192.0.2.3, for=_hidden"}}, 200, false},
			{"another so", http.Header{"Forwarded": {"for=192.0.2.4, for=_hidden"}}, 429, false},
		})
	})
}

// TestDeadlines: a request that declares a body and never sends it is cut
// within ReadTimeout on every route, a preflight or a stream included; a
// request without a body keeps its context for all of its upstream work.
func TestDeadlines(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{ReadTimeout: 300 * time.Millisecond, RequestTimeout: 5 * time.Second, AllowedOrigins: []string{allowedOrigin}}})
	for _, req := range []string{
		"POST /onboarding-url HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n",
		"OPTIONS /onboarding-url HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\nContent-Length: 3000\r\n\r\n",
		"GET /events?interviewId=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n",
		"GET /events?interviewId=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n",
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = io.Copy(io.Discard, c)
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%.40q: the connection is still held after 3s (ReadTimeout 300ms)", req)
		}
	}
	g.sim.SetFaults(simulator.Faults{LatencyMS: 400}) // a session start: two calls, 800ms
	if code, _, body := g.get("/onboarding-url", nil); code != 200 {
		t.Fatalf("a session start taking longer than ReadTimeout: %d %s, want 200", code, body)
	}
}

// postWebhookFrom posts a webhook as if from addr (X-Forwarded-For).
func postWebhookFrom(g *gateway, addr string) (int, string) {
	g.t.Helper()
	code, _, body := g.post("/webhooks/onboarding-status", "application/json", hook("someone", "UNKNOWN"),
		"Authorization", "Bearer "+webhookSecret, "X-Forwarded-For", addr)
	return code, body
}

// TestFinishedFlowNeverReopens: after ONBOARDING_FINISHED, neither an
// unknown status nor an earlier one moves the flow back, whatever order
// webhooks bring them in; the score stays readable.
func TestFinishedFlowNeverReopens(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{WebhookSecret: webhookSecret}})
	s := g.start()
	for _, status := range []string{"ONBOARDING_FINISHED", "FOO", "ID_VALIDATION_FINISHED", "UNKNOWN", "SOME_NEW_STEP"} {
		if code, body := g.postWebhook(webhookSecret, hook(s.InterviewID, status)); code != 200 {
			t.Fatalf("webhook %s: %d %s", status, code, body)
		}
		if u, _ := g.statuses.Last(s.InterviewID); u.Status != "ONBOARDING_FINISHED" {
			t.Fatalf("after a webhook %s the status is %s, want ONBOARDING_FINISHED", status, u.Status)
		}
	}
	if code, _, body := g.get("/fetch-score?interviewId="+s.InterviewID, tokenHeader(s.Token)); code != 200 {
		t.Fatalf("/fetch-score after the late webhooks: %d %s", code, body)
	}
}
