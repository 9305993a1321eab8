package sse_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream/simulator"
)

const allowedOrigin = "https://shop.example"

// TestHostileInput sends bad requests to every route. Each must get the
// 4xx it deserves with a JSON error naming the problem, never a 5xx, and
// none may reach the upstream API.
func TestHostileInput(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{AllowedOrigins: []string{allowedOrigin}, WebhookSecret: webhookSecret}, keepLogs: true})
	s, other := g.start(), g.start()
	id := s.InterviewID
	expiredTok := expiredToken(t, id)
	foreignTokens, err := sse.NewTokens([]byte("some other secret, 32 bytes long"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignTok, _ := foreignTokens.Issue(id)
	ghostTok, _ := g.tokens.Issue("never-started")
	centuryTokens, err := sse.NewTokens([]byte(tokenSecret), 100*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	centuryTok, _ := centuryTokens.Issue(id) // signed with the gateway's own secret
	crossSite := http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"cors"}}
	webhook := http.Header{"Authorization": {"Bearer " + webhookSecret}, "Content-Type": {"application/json"}}
	before := g.sim.Stats()

	tok := func(v string) http.Header { return http.Header{"X-Token": {v}} }
	with := func(h http.Header, k, v string) http.Header { h = h.Clone(); h.Set(k, v); return h }
	auth := tok(s.Token)
	cookie := func(name, value string) http.Header { return http.Header{"Cookie": {name + "=" + value}} }
	q := func(route, v string) string { return route + "?interviewId=" + v }

	type tc struct {
		name, method, path string
		header             http.Header
		body               string
		code               int
		msg                string
	}
	var cases []tc
	// Every interview route gets the same parameter and token attacks.
	for _, route := range []string{"/events", "/onboarding-status", "/fetch-score"} {
		cases = append(cases,
			tc{"no interviewId", "GET", route, auth, "", 400, "interviewId query parameter is required"},
			tc{"empty interviewId", "GET", q(route, ""), auth, "", 400, "interviewId query parameter is required"},
			tc{"interviewId twice", "GET", q(route, id) + "&interviewId=" + other.InterviewID, auth, "", 400, "more than once"},
			tc{"interviewId with a space", "GET", q(route, "a%20b"), auth, "", 400, "interviewId must be"},
			tc{"interviewId with a newline", "GET", q(route, "a%0Aevent:x"), auth, "", 400, "interviewId must be"},
			tc{"interviewId with a NUL", "GET", q(route, "a%00"), auth, "", 400, "interviewId must be"},
			tc{"interviewId path traversal", "GET", q(route, "..%2F..%2Fetc"), auth, "", 400, "interviewId must be"},
			tc{"interviewId unicode", "GET", q(route, "%C3%A9t%C3%A9"), auth, "", 400, "interviewId must be"},
			tc{"interviewId 65 chars", "GET", q(route, strings.Repeat("a", 65)), auth, "", 400, "interviewId must be"},
			tc{"missing token", "GET", q(route, id), nil, "", 401, "missing token"},
			tc{"token in the query", "GET", q(route, id) + "&token=" + s.Token, nil, "", 401, "missing token"},
			tc{"malformed token", "GET", q(route, id), tok("%%%"), "", 401, "invalid token"},
			tc{"truncated token", "GET", q(route, id), tok(s.Token[:20]), "", 401, "invalid token"},
			tc{"wrong signature", "GET", q(route, id), tok(foreignTok), "", 401, "invalid token"},
			tc{"expired token", "GET", q(route, id), tok(expiredTok), "", 401, "token expired"},
			tc{"other interview's token", "GET", q(route, id), tok(other.Token), "", 403, "another interview"},
			tc{"other interview's cookie", "GET", q(route, id), cookie(sse.CookieName(id), other.Token), "", 403, "another interview"},
			tc{"cookie of another name", "GET", q(route, id), cookie(sse.CookieName(other.InterviewID), s.Token), "", 401, "missing token"},
			tc{"Basic auth", "GET", q(route, id), http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", 401, "missing token"},
			tc{"huge token", "GET", q(route, id), tok(strings.Repeat("A", 8000)), "", 401, "invalid token"},
			tc{"POST", "POST", q(route, id), auth, "", 405, "not allowed"},
			tc{"token expiring in a century", "GET", q(route, id), tok(centuryTok), "", 401, "invalid token"},
			tc{"cross-site, from another site's page", "GET", q(route, id), with(crossSite, "X-Token", s.Token), "", 403, "cross-site request refused"},
		)
	}
	cases = append(cases,
		tc{"events: Last-Event-ID not a number", "GET", q("/events", id), with(auth, "Last-Event-ID", "abc"), "", 400, "Last-Event-ID"},
		tc{"events: Last-Event-ID negative", "GET", q("/events", id), with(auth, "Last-Event-ID", "-1"), "", 400, "Last-Event-ID"},
		tc{"events: Last-Event-ID overflows", "GET", q("/events", id), with(auth, "Last-Event-ID", "99999999999999999999999"), "", 400, "Last-Event-ID"},
		tc{"events: unknown interview", "GET", q("/events", "never-started"), tok(ghostTok), "", 404, "interview not found"},
		tc{"status: unknown interview", "GET", q("/onboarding-status", "never-started"), tok(ghostTok), "", 404, "interview not found"},
		tc{"score before the flow finished", "GET", q("/fetch-score", id), auth, "", 409, "not finished"},
		tc{"onboarding-url: PUT", "PUT", "/onboarding-url", nil, "", 405, "use GET or POST"},
		tc{"onboarding-url: DELETE", "DELETE", "/onboarding-url", nil, "", 405, "use GET or POST"},
		tc{"onboarding-url: oversized body", "POST", "/onboarding-url", nil, strings.Repeat("x", 1<<20), 413, "request body too large"},
		tc{"healthz: POST", "POST", "/healthz", nil, "", 405, "not allowed"},
		tc{"readyz: DELETE", "DELETE", "/readyz", nil, "", 405, "not allowed"},
		tc{"page: TRACE", "TRACE", "/", nil, "", 405, "not allowed"},
		tc{"unknown route", "GET", "/admin", nil, "", 404, "no such route"},
		tc{"dot file", "GET", "/.env", nil, "", 404, "no such route"},
		tc{"path traversal", "GET", "/../../etc/passwd", nil, "", 404, "no such route"},
		tc{"encoded traversal", "GET", "/%2e%2e/%2e%2e/etc/passwd", nil, "", 404, "no such route"},
		tc{"trailing slash", "GET", "/events/", auth, "", 404, "no such route"},
		tc{"simulator route on the gateway", "POST", "/sim/interviews/" + id + "/status", nil, `{"onboardingStatus":"ONBOARDING_FINISHED"}`, 404, "no such route"},
		tc{"long path", "GET", "/" + strings.Repeat("a", 8000), nil, "", 404, "no such route"},
		tc{"preflight from an unlisted origin", "OPTIONS", "/events", http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"GET"}}, "", 403, "may not call this API"},
		tc{"preflight from a look-alike origin", "OPTIONS", "/onboarding-url", http.Header{"Origin": {allowedOrigin + ".evil.example"}, "Access-Control-Request-Method": {"POST"}}, "", 403, "may not call this API"},
		tc{"preflight from null origin", "OPTIONS", "/events", http.Header{"Origin": {"null"}, "Access-Control-Request-Method": {"GET"}}, "", 403, "may not call this API"},
		// Another site making its visitors start paid sessions.
		tc{"onboarding-url: cross-site GET", "GET", "/onboarding-url", crossSite, "", 403, "cross-site request refused"},
		tc{"onboarding-url: cross-site POST", "POST", "/onboarding-url", crossSite, "", 403, "cross-site request refused"},
		tc{"onboarding-url: cross-site without Origin", "GET", "/onboarding-url", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"no-cors"}}, "", 403, "another site"},
		tc{"onboarding-url: null origin", "GET", "/onboarding-url", http.Header{"Origin": {"null"}}, "", 403, "cross-site request refused"},
		tc{"onboarding-url: look-alike origin", "GET", "/onboarding-url", http.Header{"Origin": {allowedOrigin + ".evil.example"}}, "", 403, "cross-site request refused"},
		tc{"onboarding-url: language twice", "GET", "/onboarding-url?language=en-US&language=es-ES", nil, "", 400, "language given more than once"},
		tc{"onboarding-url: any parameter twice", "GET", "/onboarding-url?x=1&x=2", nil, "", 400, "x given more than once"},
		// Webhook bodies that could be read two ways.
		tc{"webhook: trailing garbage", "POST", "/webhooks/onboarding-status", webhook, `{"interviewId":"` + id + `","onboardingStatus":"ONBOARDING_FINISHED"}garbage`, 400, "nothing after it"},
		tc{"webhook: two objects", "POST", "/webhooks/onboarding-status", webhook, `{"interviewId":"` + id + `","onboardingStatus":"UNKNOWN"} {"interviewId":"` + id + `","onboardingStatus":"ONBOARDING_FINISHED"}`, 400, "nothing after it"},
		tc{"webhook: duplicate key", "POST", "/webhooks/onboarding-status", webhook, `{"interviewId":"` + id + `","onboardingStatus":"UNKNOWN","onboardingStatus":"ONBOARDING_FINISHED"}`, 400, "more than once"},
		tc{"webhook: duplicate key in another case", "POST", "/webhooks/onboarding-status", webhook, `{"interviewId":"` + id + `","onboardingStatus":"UNKNOWN","ONBOARDINGSTATUS":"ONBOARDING_FINISHED"}`, 400, "more than once"},
		tc{"webhook: duplicate key with a long s", "POST", "/webhooks/onboarding-status", webhook, `{"interviewId":"` + id + `","onboardingStatus":"ONBOARDING_FINISHED","onboardingStatu\u017f":"UNKNOWN"}`, 400, "more than once"},
	)
	if len(cases) < 60 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, c := range cases {
		route, _, _ := strings.Cut(c.path, "?")
		t.Run(c.method+" "+truncate(route)+" "+c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			req, err := http.NewRequest(c.method, g.url+c.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if c.header != nil {
				req.Header = c.header.Clone()
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var e struct {
				Error string `json:"error"`
				Code  string `json:"code"`
			}
			if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" || e.Code == "" || strings.Trim(e.Code, "abcdefghijklmnopqrstuvwxyz_") != "" {
				t.Fatalf("%d %q: not a JSON error with a reason code", resp.StatusCode, raw)
			}
			if resp.StatusCode != c.code || !strings.Contains(e.Error, c.msg) {
				t.Fatalf("%d %q, want %d with %q", resp.StatusCode, e.Error, c.code, c.msg)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatal("a CORS grant on a hostile request")
			}
		})
	}

	after := g.sim.Stats()
	if after.Start != before.Start || after.OnboardingURL != before.OnboardingURL || after.Score != before.Score {
		t.Errorf("bad requests reached the upstream API: %+v -> %+v", before, after)
	}
	if n := after.StatusByInterview[id] - before.StatusByInterview[id]; n > 1 {
		t.Errorf("bad requests cost %d upstream status calls (only the 409 case may read once)", n)
	}
	for _, secret := range []string{s.Token, other.Token, expiredTok, foreignTok, "test-key"} {
		if strings.Contains(g.logs.String(), secret) {
			t.Errorf("a token or the API key appears in the logs")
		}
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func TestCORSGrantsListedOriginsOnly(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{AllowedOrigins: []string{allowedOrigin}}})
	s := g.start()
	t.Run("preflight from a listed origin", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, g.url+"/events", nil)
		req.Header.Set("Origin", allowedOrigin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "x-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != allowedOrigin ||
			h.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-Token") ||
			!strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Fatalf("%d %v", resp.StatusCode, h)
		}
	})
	for origin, granted := range map[string]bool{allowedOrigin: true, "https://evil.example": false, "": false} {
		t.Run("GET from "+origin, func(t *testing.T) {
			h := tokenHeader(s.Token)
			if origin != "" {
				h.Set("Origin", origin)
			}
			code, hdr, _ := g.get("/onboarding-status?interviewId="+s.InterviewID, h)
			want := 200
			if origin == "https://evil.example" {
				want = 403 // a page on another site is refused outright
			}
			if code != want || !strings.Contains(strings.Join(hdr.Values("Vary"), ","), "Origin") {
				t.Fatalf("%d, Vary %q, want %d", code, hdr.Values("Vary"), want)
			}
			if got := hdr.Get("Access-Control-Allow-Origin") == origin && origin != ""; got != granted {
				t.Fatalf("Access-Control-Allow-Origin %q for origin %q, want granted=%v", hdr.Get("Access-Control-Allow-Origin"), origin, granted)
			}
			if !granted && hdr.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatal("credentials granted to an unlisted origin")
			}
		})
	}
}

func TestSessionRateLimit(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{SessionsPerMinute: 6, SessionBurst: 2, ClientIPHeader: "X-Forwarded-For", TrustedProxies: loopbackProxy}})
	from := func(ip string) (int, http.Header, string) {
		return g.get("/onboarding-url", http.Header{"X-Forwarded-For": {"203.0.113.9, " + ip}})
	}
	for i := range 2 {
		if code, _, body := from("198.51.100.1"); code != 200 {
			t.Fatalf("call %d within the burst: %d %s", i, code, body)
		}
	}
	code, h, body := from("198.51.100.1")
	if code != 429 || !strings.Contains(jsonError(t, body), "too many new sessions") {
		t.Fatalf("third call: %d %s, want 429", code, body)
	}
	if ra := h.Get("Retry-After"); ra != "10" {
		t.Fatalf("Retry-After %q, want 10 (6 per minute)", ra)
	}
	// The limit is per client: another address (as the trusted proxy
	// reports it) is not held back.
	if code, _, _ := from("198.51.100.2"); code != 200 {
		t.Fatalf("another client: %d", code)
	}
	if st := g.sim.Stats(); st.Start != 3 {
		t.Fatalf("%d upstream sessions started, want 3 (the refused call must not start one)", st.Start)
	}

	t.Run("proxy header ignored unless configured", func(t *testing.T) {
		g := newGateway(t, options{handler: sse.Config{SessionsPerMinute: 6, SessionBurst: 1}})
		for i, want := range []int{200, 429} {
			code, _, _ := g.get("/onboarding-url", http.Header{"X-Forwarded-For": {fmt.Sprint("192.0.2.", i)}})
			if code != want {
				t.Fatalf("call %d with a spoofed X-Forwarded-For: %d, want %d", i, code, want)
			}
		}
	})
}

func TestStreamCaps(t *testing.T) {
	g := newGateway(t, options{broker: sse.BrokerConfig{MaxPerInterview: 2, MaxPerClient: 3, MaxStreams: 4}})
	a, b := g.start(), g.start()
	open := func(s session) int { return openStream(t, g, s) }
	for _, s := range []session{a, a} {
		if code := open(s); code != 200 {
			t.Fatalf("stream within the caps: %d", code)
		}
	}
	code, _, body := g.get("/events?interviewId="+a.InterviewID, tokenHeader(a.Token))
	if code != 429 || !strings.Contains(jsonError(t, body), "for this interview") {
		t.Fatalf("third stream of one interview: %d %s, want 429", code, body)
	}
	if code := open(b); code != 200 {
		t.Fatalf("stream of another interview: %d", code)
	}
	code, _, body = g.get("/events?interviewId="+b.InterviewID, tokenHeader(b.Token))
	if code != 429 || !strings.Contains(jsonError(t, body), "from this address") {
		t.Fatalf("fourth stream from one client: %d %s, want 429", code, body)
	}
	if g.broker.Connections() != 3 {
		t.Fatalf("%d connections, want 3", g.broker.Connections())
	}

	t.Run("total", func(t *testing.T) {
		g := newGateway(t, options{broker: sse.BrokerConfig{MaxStreams: 1}})
		s := g.start()
		if code := openStream(t, g, s); code != 200 {
			t.Fatalf("first stream: %d", code)
		}
		code, h, body := g.get("/events?interviewId="+s.InterviewID, tokenHeader(s.Token))
		if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(jsonError(t, body), "capacity") {
			t.Fatalf("stream over the node's cap: %d %s, want 503 with Retry-After", code, body)
		}
	})
}

// openStream opens a stream and reads its first event when it is open; it
// returns the status code.
func openStream(t *testing.T, g *gateway, s session) int {
	t.Helper()
	st := g.open(s, "")
	if st.Resp.StatusCode == 200 {
		statusOf(t, st.Next(t))
	}
	return st.Resp.StatusCode
}

// TestMalformedUpstreamAnswersAre502 covers upstream answers that are not
// what the API promises: broken JSON, and a status too large to accept.
func TestMalformedUpstreamAnswersAre502(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	g.sim.SetFaults(simulator.Faults{MalformedRate: 1})
	code, _, body := g.get("/onboarding-url", nil)
	if code != 502 || !strings.Contains(jsonError(t, body), "malformed") {
		t.Fatalf("broken JSON from upstream: %d %s, want 502", code, body)
	}
	g.sim.ClearFaults()
	g.setStatus(s.InterviewID, strings.Repeat("X", 2<<20)) // over the 1 MiB answer cap
	code, _, body = g.get("/onboarding-status?interviewId="+s.InterviewID, tokenHeader(s.Token))
	if code != 502 || !strings.Contains(jsonError(t, body), "malformed") {
		t.Fatalf("oversized upstream answer: %d %s, want 502", code, body)
	}
}
