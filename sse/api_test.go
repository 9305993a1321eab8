package sse_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// jsonError decodes an {"error": "..."} body.
func jsonError(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("body %q is not a JSON error", body)
	}
	return e.Error
}

func TestTokensGuardEveryInterviewRoute(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	other := g.start()
	expiredTok := expiredToken(t, s.InterviewID)
	foreignTokens, err := sse.NewTokens([]byte("another secret of enough length"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := foreignTokens.Issue(s.InterviewID)

	cases := []struct {
		name   string
		header http.Header
		code   int
		msg    string
	}{
		{"missing", nil, 401, "missing token"},
		{"malformed", tokenHeader("not-a-token"), 401, "invalid token"},
		{"truncated", tokenHeader(s.Token[:len(s.Token)-5]), 401, "invalid token"},
		{"tampered interview", tokenHeader(strings.Replace(s.Token, s.InterviewID, other.InterviewID, 1)), 401, "invalid token"},
		{"wrong secret", tokenHeader(foreign), 401, "invalid token"},
		{"expired", tokenHeader(expiredTok), 401, "token expired"},
		{"other interview's token", tokenHeader(other.Token), 403, "another interview"},
		{"bearer for other interview", http.Header{"Authorization": {"Bearer " + other.Token}}, 403, "another interview"},
		{"token only in the query is ignored", nil, 401, "missing token"},
	}
	for _, route := range []string{"/events", "/onboarding-status", "/fetch-score"} {
		for _, tc := range cases {
			t.Run(route+"/"+tc.name, func(t *testing.T) {
				path := route + "?interviewId=" + s.InterviewID
				if strings.Contains(tc.name, "query") {
					path += "&token=" + s.Token
				}
				code, _, body := g.get(path, tc.header)
				if code != tc.code || !strings.Contains(jsonError(t, body), tc.msg) {
					t.Fatalf("%d %s, want %d with %q", code, body, tc.code, tc.msg)
				}
			})
		}
	}
	t.Run("bearer accepted", func(t *testing.T) {
		code, _, body := g.get("/onboarding-status?interviewId="+s.InterviewID, http.Header{"Authorization": {"Bearer " + s.Token}})
		if code != 200 || !strings.Contains(body, `"onboardingStatus":"UNKNOWN"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
}

func TestBadRequestsGetJSONErrors(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	auth := tokenHeader(s.Token)
	withLastID := func(v string) http.Header { return http.Header{"X-Token": {s.Token}, "Last-Event-ID": {v}} }
	cases := []struct {
		name, method, path string
		header             http.Header
		code               int
		msg                string
	}{
		{"missing interviewId", "GET", "/events", auth, 400, "interviewId query parameter is required"},
		{"interviewId with bad characters", "GET", "/onboarding-status?interviewId=a%0Ab", auth, 400, "interviewId must be"},
		{"interviewId too long", "GET", "/fetch-score?interviewId=" + strings.Repeat("a", 65), auth, 400, "interviewId must be"},
		{"non-numeric Last-Event-ID", "GET", "/events?interviewId=" + s.InterviewID, withLastID("abc"), 400, "Last-Event-ID"},
		{"negative Last-Event-ID", "GET", "/events?interviewId=" + s.InterviewID, withLastID("-1"), 400, "Last-Event-ID"},
		{"unknown route", "GET", "/nope", nil, 404, "no such route"},
		{"wrong method", "DELETE", "/events?interviewId=" + s.InterviewID, auth, 405, "not allowed"},
		{"score before finish", "GET", "/fetch-score?interviewId=" + s.InterviewID, auth, 409, "not finished"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, g.url+tc.path, nil)
			req.Header = tc.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("%d: body is not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.code || !strings.Contains(e.Error, tc.msg) {
				t.Fatalf("%d %q, want %d with %q", resp.StatusCode, e.Error, tc.code, tc.msg)
			}
			if tc.code == 405 && resp.Header.Get("Allow") != "GET" {
				t.Fatalf("Allow = %q, want GET", resp.Header.Get("Allow"))
			}
		})
	}
}

func TestUnknownInterviewLeavesNothingBehind(t *testing.T) {
	g := newGateway(t, options{})
	tok, _ := g.tokens.Issue("never-started")
	for _, route := range []string{"/events", "/onboarding-status"} {
		code, _, body := g.get(route+"?interviewId=never-started", tokenHeader(tok))
		if code != http.StatusNotFound || jsonError(t, body) != "interview not found" {
			t.Fatalf("%s: %d %s, want 404 interview not found", route, code, body)
		}
	}
	if g.pollers() != 0 || g.broker.Connections() != 0 {
		t.Fatal("a poller or stream was left behind for an unknown interview")
	}
}

func TestPollingClientsShareUpstreamCalls(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour})
	s := g.start()
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			code, _, body := g.get("/onboarding-status?interviewId="+s.InterviewID, tokenHeader(s.Token))
			if code != 200 || body != "{\"onboardingStatus\":\"UNKNOWN\"}\n" {
				t.Errorf("%d %s", code, body)
			}
		})
	}
	wg.Wait()
	if n := g.sim.Stats().StatusByInterview[s.InterviewID]; n != 1 {
		t.Fatalf("30 polling requests within one interval cost %d upstream calls, want 1", n)
	}
}

func TestFetchScore(t *testing.T) {
	for _, outcome := range []string{simulator.OutcomeOK, simulator.OutcomeWarn, simulator.OutcomeFail} {
		t.Run(outcome, func(t *testing.T) {
			g := newGateway(t, options{})
			s := g.start()
			if err := g.sim.SetScore(s.InterviewID, outcome); err != nil {
				t.Fatal(err)
			}
			g.setStatus(s.InterviewID, "ONBOARDING_FINISHED")
			var wg sync.WaitGroup
			for range 5 {
				wg.Go(func() {
					code, _, body := g.get("/fetch-score?interviewId="+s.InterviewID, tokenHeader(s.Token))
					// The browser gets the verdict and nothing else: the
					// breakdown would tell a fraudster which check failed.
					var got map[string]any
					if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
						t.Errorf("%d %s", code, body)
					}
					if !reflect.DeepEqual(got, map[string]any{"status": outcome}) {
						t.Errorf("score %s, want {\"status\":%q} only", body, outcome)
					}
				})
			}
			wg.Wait()
			if n := g.sim.Stats().Score; n < 1 || n > 5 {
				t.Fatalf("%d upstream score calls for 5 requests", n)
			}
		})
	}
}

func TestOnboardingURL(t *testing.T) {
	g := newGateway(t, options{})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, g.url+"/onboarding-url", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var s session
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", method, resp.StatusCode, err)
		}
		if !strings.HasPrefix(s.URL, g.simURL+"/flow/"+s.InterviewID) || s.Token == "" || g.tokens.Verify(s.Token, s.InterviewID) != nil {
			t.Fatalf("%s: got %+v", method, s)
		}
	}
	if st := g.sim.Stats(); st.Start != 2 || st.OnboardingURL != 2 {
		t.Fatalf("simulator saw %+v, want 2 starts and 2 URL calls", st)
	}
	g.sim.SetFaults(simulator.Faults{ErrorRate: 1, Status: 503, RetryAfterS: 7})
	code, h, body := g.get("/onboarding-url", nil)
	if code != 503 || h.Get("Retry-After") != "7" || !strings.Contains(jsonError(t, body), "unavailable") {
		t.Fatalf("upstream down: %d Retry-After %q %s", code, h.Get("Retry-After"), body)
	}
	// The body names a reason, never the upstream's address, an upstream
	// answer, or another user's interview id: those go to the log.
	if code, h, body := g.get("/readyz", nil); code != 503 || strings.TrimSpace(body) != `{"reason":"upstream_unavailable","status":"unready"}` || h.Get("Retry-After") == "" {
		t.Fatalf("/readyz with upstream down: %d %v %s", code, h, body)
	}
	g.sim.ClearFaults()
	if code, _, _ := g.get("/onboarding-url", nil); code != 200 {
		t.Fatalf("after recovery: %d", code)
	}
	if code, _, _ := g.get("/readyz", nil); code != 200 {
		t.Fatalf("/readyz after recovery: %d", code)
	}
}

func TestPageAndSecurityHeaders(t *testing.T) {
	g := newGateway(t, options{})
	code, h, body := g.get("/", nil)
	if code != 200 || !strings.Contains(body, "<title>page</title>") {
		t.Fatalf("/: %d %q", code, body)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "frame-src " + g.simURL + ";", "script-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	q := `=(self "` + g.simURL + `")`
	if pp := h.Get("Permissions-Policy"); pp != "camera"+q+", microphone"+q+", geolocation"+q+", accelerometer"+q+", gyroscope"+q {
		t.Errorf("Permissions-Policy %q, want the flow's devices and motion sensors for the page, to delegate, and the flow origin alone", pp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	if code, _, _ := g.get("/app.js", nil); code != 200 {
		t.Errorf("/app.js: %d", code)
	}
	if code, _, _ := g.get("/healthz", nil); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
}

// TestUpstreamRetryAfterIsHonoured: a 429 with Retry-After stops status
// calls for that interview until the time given, while subscribers keep the
// last status.
func TestUpstreamRetryAfterIsHonoured(t *testing.T) {
	g := newGateway(t, options{interval: 20 * time.Millisecond})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	g.sim.SetFaults(simulator.Faults{ErrorRate: 1, Status: 429, RetryAfterS: 60})
	calls := func() int64 { return g.sim.Stats().StatusByInterview[s.InterviewID] }
	before := calls()
	eventually(t, "the poller meets the 429", func() bool { return calls() > before })
	limited := calls()
	time.Sleep(500 * time.Millisecond) // 25 intervals
	if n := calls(); n != limited {
		t.Fatalf("%d status calls during a 60s Retry-After", n-limited)
	}
	code, _, body := g.get("/onboarding-status?interviewId="+s.InterviewID, tokenHeader(s.Token))
	if code != 200 || !strings.Contains(body, "UNKNOWN") || calls() != limited {
		t.Fatalf("polling client during Retry-After: %d %s (calls %d -> %d), want the last status from memory", code, body, limited, calls())
	}
}
