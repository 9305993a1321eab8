package sse_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream"
)

const (
	apiToken      = "api-token-for-tests-0123456789"
	apiTokenSpare = "api-token-for-tests-rotated-abc"
)

// backendGateway is a gateway as production runs it: sessions start from
// the integrator's backend only, through the server API.
func backendGateway(t *testing.T, o options) *gateway {
	t.Helper()
	o.handler.APITokens = []string{apiToken, apiTokenSpare}
	o.handler.BackendSessionsOnly = true
	return newGateway(t, o)
}

// api sends a server API request with the API token given ("" sends no
// Authorization) and returns the status, headers and body.
func (g *gateway) api(method, path, token, body string) (int, http.Header, string) {
	g.t.Helper()
	hdr := []string{}
	if token != "" {
		hdr = append(hdr, "Authorization", "Bearer "+token)
	}
	if method == http.MethodGet {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		return g.get(path, h)
	}
	return g.post(path, "application/json", body, hdr...)
}

// created is the answer of POST /v1/sessions and its import.
type created struct {
	InterviewID string `json:"interviewId"`
	URL         string `json:"url"`
	Token       string `json:"token"`
	ExpiresAt   string `json:"expiresAt"`
}

func decodeCreated(t *testing.T, code int, body string) created {
	t.Helper()
	if code != http.StatusCreated {
		t.Fatalf("got %d %s, want 201", code, body)
	}
	var c created
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// state is the answer of GET /v1/sessions/{interviewId}.
type state struct {
	InterviewID      string          `json:"interviewId"`
	OnboardingStatus string          `json:"onboardingStatus"`
	Seq              uint64          `json:"seq"`
	Finished         bool            `json:"finished"`
	Score            json.RawMessage `json:"score"`
}

func (g *gateway) state(id string) state {
	g.t.Helper()
	code, _, body := g.api(http.MethodGet, "/v1/sessions/"+id, apiToken, "")
	if code != http.StatusOK {
		g.t.Fatalf("GET /v1/sessions/%s: %d %s", id, code, body)
	}
	var s state
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		g.t.Fatal(err)
	}
	return s
}

// follow opens a stream with the browser token the server API handed
// out, as the page would: it must get the snapshot, UNKNOWN, and then
// status once the simulator moves the flow there.
func (g *gateway) follow(c created, status string) {
	g.t.Helper()
	stream := g.open(session{InterviewID: c.InterviewID, Token: c.Token}, "")
	if u := stream.NextStatus(g.t); u.Status != "UNKNOWN" {
		g.t.Fatalf("snapshot %+v", u)
	}
	g.setStatus(c.InterviewID, status)
	if u := stream.NextStatus(g.t); u.Status != status {
		g.t.Fatalf("change %+v, want %s", u, status)
	}
}

// TestServerAPISessionToScore is the backend's whole path: it starts a
// session with its own options, the page follows it with the token it was
// handed, and the backend reads the full score where the browser gets the
// verdict alone.
func TestServerAPISessionToScore(t *testing.T) {
	g := backendGateway(t, options{})

	code, _, body := g.get("/onboarding-url", nil)
	if code != http.StatusNotFound || !strings.Contains(jsonError(t, body), "POST /v1/sessions") {
		t.Fatalf("/onboarding-url with public sessions off: %d %s, want 404 naming the server API", code, body)
	}

	code, hdr, body := g.api(http.MethodPost, "/v1/sessions", apiToken,
		`{"externalCustomerId":"customer-42","language":"en-GB","redirectionUrl":"https://app.example/done","customFields":{"plan":"gold"}}`)
	c := decodeCreated(t, code, body)
	if c.InterviewID == "" || c.Token == "" || !strings.HasPrefix(c.URL, g.simURL) {
		t.Fatalf("created %+v: want an interview, a token and a flow URL on %s", c, g.simURL)
	}
	if loc := hdr.Get("Location"); loc != "/v1/sessions/"+c.InterviewID {
		t.Errorf("Location %q", loc)
	}
	if exp, err := time.Parse(time.RFC3339, c.ExpiresAt); err != nil || time.Until(exp) < 50*time.Minute || time.Until(exp) > 61*time.Minute {
		t.Errorf("expiresAt %q: want about an hour from now (the token TTL)", c.ExpiresAt)
	}
	info, _ := g.sim.Session(c.InterviewID)
	if info.Start.ExternalCustomerID != "customer-42" || info.Start.RedirectionURL != "https://app.example/done" ||
		info.Start.Language != "en-US" || string(info.Start.CustomFields) != `{"plan":"gold"}` {
		t.Errorf("the upstream session started with %+v", info.Start)
	}

	st := g.state(c.InterviewID)
	if st.OnboardingStatus != "UNKNOWN" || st.Finished || st.Seq == 0 || st.Score != nil {
		t.Errorf("state before the flow: %+v", st)
	}

	g.follow(c, "ONBOARDING_FINISHED")

	st = g.state(c.InterviewID)
	var score map[string]json.RawMessage
	if err := json.Unmarshal(st.Score, &score); err != nil || !st.Finished || st.OnboardingStatus != "ONBOARDING_FINISHED" {
		t.Fatalf("state after the flow: %+v (%v)", st, err)
	}
	for _, key := range []string{"overall", "idValidation", "liveness", "faceRecognition"} {
		if _, ok := score[key]; !ok {
			t.Errorf("the backend's score lacks %q: %s", key, st.Score)
		}
	}
	code, _, body = g.get("/fetch-score?interviewId="+c.InterviewID, tokenHeader(c.Token))
	if code != http.StatusOK || strings.Contains(body, "idValidation") || !strings.Contains(body, `"status"`) {
		t.Errorf("/fetch-score for the browser: %d %s, want the verdict alone", code, body)
	}
}

// TestServerAPIImport hands pushgate a session the backend started with
// the upstream itself, as Incode's sample backends do.
func TestServerAPIImport(t *testing.T) {
	g := backendGateway(t, options{})
	client, err := upstream.New(upstream.Config{BaseURL: g.simURL, APIKey: simAPIKey, FlowID: "backend-flow"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	up, err := client.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flowURL, err := client.OnboardingURL(ctx, up)
	if err != nil {
		t.Fatal(err)
	}

	body, _ := json.Marshal(map[string]string{"interviewId": up.InterviewID, "sessionToken": up.Token, "url": flowURL})
	code, _, resp := g.api(http.MethodPost, "/v1/sessions/import", apiToken, string(body))
	c := decodeCreated(t, code, resp)
	if c.InterviewID != up.InterviewID || c.Token == "" || c.URL != flowURL {
		t.Fatalf("imported %+v", c)
	}
	g.follow(c, "ID_VALIDATION_FINISHED")
	if st := g.state(up.InterviewID); st.OnboardingStatus != "ID_VALIDATION_FINISHED" || st.Finished {
		t.Errorf("state %+v", st)
	}

	// Another session's token for an interview already watched is refused:
	// taking it would make this interview follow that session.
	other0, err := client.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(map[string]string{"interviewId": up.InterviewID, "sessionToken": other0.Token})
	if code, _, resp := g.api(http.MethodPost, "/v1/sessions/import", apiToken, string(body)); code != http.StatusConflict || !strings.Contains(resp, "interview_conflict") {
		t.Errorf("import of another session's token for a watched interview: %d %s, want 409", code, resp)
	}
	if g.statuses.SessionToken(up.InterviewID) != up.Token {
		t.Error("a refused import replaced the interview's session token")
	}
	// Importing the same pair again is fine.
	body, _ = json.Marshal(map[string]string{"interviewId": up.InterviewID, "sessionToken": up.Token})
	if code, _, resp := g.api(http.MethodPost, "/v1/sessions/import", apiToken, string(body)); code != http.StatusCreated {
		t.Errorf("the same import again: %d %s, want 201", code, resp)
	}

	// A session the upstream no longer takes is refused with 422.
	other, err := client.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.sim.Expire(other.InterviewID); err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(map[string]string{"interviewId": other.InterviewID, "sessionToken": other.Token})
	code, _, resp = g.api(http.MethodPost, "/v1/sessions/import", apiToken, string(body))
	if code != http.StatusUnprocessableEntity || !strings.Contains(jsonError(t, resp), "sessionToken") {
		t.Errorf("import of an expired session: %d %s, want 422", code, resp)
	}

	// A session whose flow timed out (EXPIRED) has ended: 410.
	timedOut, err := client.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.setStatus(timedOut.InterviewID, flow.StatusExpired)
	body, _ = json.Marshal(map[string]string{"interviewId": timedOut.InterviewID, "sessionToken": timedOut.Token})
	code, _, resp = g.api(http.MethodPost, "/v1/sessions/import", apiToken, string(body))
	if code != http.StatusGone || !strings.Contains(resp, `"session_expired"`) {
		t.Errorf("import of an EXPIRED session: %d %s, want 410 session_expired", code, resp)
	}
}

// TestServerAPIRefusals: every bad call gets a 4xx with a JSON error
// naming the problem, and starts nothing upstream.
func TestServerAPIRefusals(t *testing.T) {
	g := backendGateway(t, options{handler: sse.Config{AllowedOrigins: []string{"https://app.example"}}})
	pub := newGateway(t, options{})
	browser := pub.start() // a browser's token and cookie, from a gateway with the same secret

	long := strings.Repeat("x", 300)
	cases := []struct {
		name, method, path, token, body string
		code                            int
		msg                             string
	}{
		{"no API token", "POST", "/v1/sessions", "", `{}`, 401, "missing API token"},
		{"wrong API token", "POST", "/v1/sessions", "not-the-api-token-at-all", `{}`, 401, "invalid API token"},
		{"browser token as bearer", "POST", "/v1/sessions", browser.Token, `{}`, 401, "invalid API token"},
		{"browser token on a read", "GET", "/v1/sessions/" + browser.InterviewID, browser.Token, "", 401, "invalid API token"},
		{"not JSON", "POST", "/v1/sessions", apiToken, `{"language":`, 400, "not the JSON object expected"},
		{"unknown field", "POST", "/v1/sessions", apiToken, `{"flowId":"other"}`, 400, `unknown field "flowId"`},
		{"two objects", "POST", "/v1/sessions", apiToken, `{} {}`, 400, "nothing after it"},
		{"trailing garbage", "POST", "/v1/sessions", apiToken, `{}x`, 400, "nothing after it"},
		{"wrong type", "POST", "/v1/sessions", apiToken, `{"customFields":[1]}`, 400, "customFields"},
		{"external id too long", "POST", "/v1/sessions", apiToken, `{"externalCustomerId":"` + long + `"}`, 400, "externalCustomerId"},
		{"control characters", "POST", "/v1/sessions", apiToken, `{"externalCustomerId":"a\u0000b"}`, 400, "externalCustomerId"},
		{"script redirection", "POST", "/v1/sessions", apiToken, `{"redirectionUrl":"javascript:alert(1)"}`, 400, "redirectionUrl"},
		{"relative redirection", "POST", "/v1/sessions", apiToken, `{"redirectionUrl":"/done"}`, 400, "redirectionUrl"},
		{"malformed language", "POST", "/v1/sessions", apiToken, `{"language":"en_US!"}`, 400, "language"},
		{"language not offered", "POST", "/v1/sessions", apiToken, `{"language":"pt-BR"}`, 400, "not offered"},
		{"body too large", "POST", "/v1/sessions", apiToken, `{"externalCustomerId":"` + strings.Repeat("x", 5000) + `"}`, 413, "too large"},
		{"import without id", "POST", "/v1/sessions/import", apiToken, `{"sessionToken":"abc"}`, 400, "interviewId is required"},
		{"import with a bad id", "POST", "/v1/sessions/import", apiToken, `{"interviewId":"../x","sessionToken":"abc"}`, 400, "interviewId is required"},
		{"import without token", "POST", "/v1/sessions/import", apiToken, `{"interviewId":"abc"}`, 400, "sessionToken is required"},
		{"import with a bad url", "POST", "/v1/sessions/import", apiToken, `{"interviewId":"abc","sessionToken":"t","url":"data:text/html,x"}`, 400, "url must be"},
		{"import of a made-up token", "POST", "/v1/sessions/import", apiToken, `{"interviewId":"abc","sessionToken":"made-up"}`, 422, "does not take this sessionToken"},
		{"import with an empty body", "POST", "/v1/sessions/import", apiToken, ``, 400, "empty"},
		{"unknown interview", "GET", "/v1/sessions/never-started", apiToken, "", 404, "no session with this interviewId"},
		{"malformed interview", "GET", "/v1/sessions/bad%24id", apiToken, "", 400, "interviewId must be"},
		{"wrong method", "DELETE", "/v1/sessions/abc", apiToken, "", 405, "not allowed"},
	}
	startsBefore := g.sim.Stats().Start
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, g.url+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			req.AddCookie(browser.cookie) // never an API credential
			code, hdr, body := do(t, req)
			if code != tc.code || !strings.Contains(jsonError(t, body), tc.msg) {
				t.Errorf("got %d %s, want %d with %q", code, body, tc.code, tc.msg)
			}
			if code == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", hdr)
			}
		})
	}
	if n := g.sim.Stats().Start - startsBefore; n != 0 {
		t.Errorf("refused calls started %d upstream sessions", n)
	}

	t.Run("wrong content type", func(t *testing.T) {
		code, _, body := g.post("/v1/sessions", "text/plain", `{}`, "Authorization", "Bearer "+apiToken)
		if code != http.StatusUnsupportedMediaType || !strings.Contains(jsonError(t, body), "Content-Type: application/json") {
			t.Errorf("got %d %s", code, body)
		}
	})
	t.Run("rotated token and an empty body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/sessions", nil)
		req.Header.Set("Authorization", "Bearer "+apiTokenSpare)
		code, _, body := do(t, req)
		decodeCreated(t, code, body)
		// The same, chunked: an empty body however it is sent.
		req, _ = http.NewRequest(http.MethodPost, g.url+"/v1/sessions", io.NopCloser(strings.NewReader("")))
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+apiTokenSpare)
		code, _, body = do(t, req)
		decodeCreated(t, code, body)
	})
	t.Run("browsers get no grant", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, g.url+"/v1/sessions", nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		code, hdr, body := do(t, req)
		if code != http.StatusForbidden || hdr.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(jsonError(t, body), "backend") {
			t.Errorf("preflight from a listed origin: %d %v %s, want 403 without a grant", code, hdr, body)
		}
		req, _ = http.NewRequest(http.MethodGet, g.url+"/v1/sessions/abc", nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Authorization", "Bearer "+apiToken)
		if _, hdr, _ := do(t, req); hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("a listed origin got a grant to read the server API: %v", hdr)
		}
	})
	t.Run("server API off", func(t *testing.T) {
		code, _, body := pub.api(http.MethodPost, "/v1/sessions", apiToken, `{}`)
		if code != http.StatusNotFound || !strings.Contains(jsonError(t, body), "-api-token") {
			t.Errorf("got %d %s", code, body)
		}
	})
}

func do(t *testing.T, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, resp.Header, b.String()
}

// TestServerAPIRateCeiling: each API token has its own ceiling, apart
// from the browsers' per-address limit.
func TestServerAPIRateCeiling(t *testing.T) {
	g := backendGateway(t, options{handler: sse.Config{APIRequestsPerMinute: 1, APIBurst: 2}})
	for i := range 2 {
		if code, _, body := g.api(http.MethodGet, "/v1/sessions/abc", apiToken, ""); code != http.StatusNotFound {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	code, hdr, body := g.api(http.MethodGet, "/v1/sessions/abc", apiToken, "")
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(jsonError(t, body), "API token") {
		t.Fatalf("third request: %d %v %s, want 429 with Retry-After", code, hdr, body)
	}
	if code, _, body := g.api(http.MethodGet, "/v1/sessions/abc", apiTokenSpare, ""); code != http.StatusNotFound {
		t.Errorf("the other token: %d %s, want its own ceiling", code, body)
	}
	if n := pollertest.Metric(t, g.metrics, "pushgate_rate_limited_total", "route", "/v1/"); n != 1 {
		t.Errorf("pushgate_rate_limited_total{route=/v1/} = %v, want 1", n)
	}
}

// TestCallsAvoided: ten streams on one interview cost one upstream read
// per interval, and the metrics show what per-stream polling would have
// cost.
func TestCallsAvoided(t *testing.T) {
	g := newGateway(t, options{interval: 20 * time.Millisecond})
	s := g.start()
	for range 10 {
		stream := g.open(s, "")
		stream.NextStatus(t)
	}
	eventually(t, "50 intervals of 10 streams", func() bool {
		return pollertest.Metric(t, g.metrics, "pushgate_polling_equivalent_calls_total") >= 500
	})
	eq := pollertest.Metric(t, g.metrics, "pushgate_polling_equivalent_calls_total")
	avoided := pollertest.Metric(t, g.metrics, "pushgate_upstream_calls_avoided_total")
	made := pollertest.Metric(t, g.metrics, "pushgate_upstream_calls_total", "endpoint", "status")
	// eq was read first, so avoided (read after, from a larger eq) is at
	// least eq less the calls made up to then, give or take the one call
	// that may have been in flight (counted by the poller as it starts, by
	// the upstream client as it ends).
	if made == 0 || avoided < math.Floor(eq)-made-1 || avoided > eq {
		t.Errorf("equivalent %v, made %v, avoided %v: want avoided between equivalent-made and equivalent", eq, made, avoided)
	}
	if avoided < eq/2 {
		t.Errorf("avoided %v of %v: ten streams share one poller, want most calls avoided", avoided, eq)
	}
}

// TestServerAPIFlows: with several flows configured, the backend starts a
// session in the flow it names, or in the first when it names none; a flow
// not configured, or a configurationId that is not a string, gets a 400
// naming the problem and starts nothing. A browser's session always runs
// the first flow, and a browser cannot name one.
func TestServerAPIFlows(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{APITokens: []string{apiToken}, Flows: []string{"flowA", "flowB"}}})
	flowOf := func(t *testing.T, interviewID string) string {
		t.Helper()
		info, ok := g.sim.Session(interviewID)
		if !ok {
			t.Fatalf("the upstream has no session %s", interviewID)
		}
		return info.Start.ConfigurationID
	}
	for _, tc := range []struct{ name, body, want string }{
		{"another flow", `{"configurationId":"flowB"}`, "flowB"},
		{"the default, named", `{"configurationId":"flowA","language":"en-US"}`, "flowA"},
		{"none named", `{"externalCustomerId":"customer-7"}`, "flowA"},
		{"null", `{"configurationId":null}`, "flowA"},
		{"an empty body", ``, "flowA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := g.api(http.MethodPost, "/v1/sessions", apiToken, tc.body)
			if got := flowOf(t, decodeCreated(t, code, body).InterviewID); got != tc.want {
				t.Errorf("the upstream session runs %q, want %q", got, tc.want)
			}
		})
	}

	startsBefore := g.sim.Stats().Start
	for _, tc := range []struct{ name, body, code, msg string }{
		{"a flow not configured", `{"configurationId":"nope"}`, "unknown_flow", "offers flowA, flowB (-flow-id)"},
		{"empty", `{"configurationId":""}`, "unknown_flow", "configurationId is not a flow"},
		{"another case", `{"configurationId":"FLOWB"}`, "unknown_flow", "configurationId is not a flow"},
		{"padded", `{"configurationId":" flowB"}`, "unknown_flow", "configurationId is not a flow"},
		{"a number", `{"configurationId":42}`, "bad_request", "configurationId"},
		{"a list", `{"configurationId":["flowB"]}`, "bad_request", "configurationId"},
		{"an object", `{"configurationId":{"id":"flowB"}}`, "bad_request", "configurationId"},
		{"a boolean", `{"configurationId":true}`, "bad_request", "configurationId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := g.api(http.MethodPost, "/v1/sessions", apiToken, tc.body)
			var e struct{ Error, Code string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || code != http.StatusBadRequest || e.Code != tc.code || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("got %d %s, want 400 with code %s and %q", code, body, tc.code, tc.msg)
			}
		})
	}
	if n := g.sim.Stats().Start - startsBefore; n != 0 {
		t.Errorf("refused calls started %d upstream sessions", n)
	}

	t.Run("a browser's session", func(t *testing.T) {
		if got := flowOf(t, g.start().InterviewID); got != "flowA" {
			t.Errorf("the page's session runs %q, want the default flowA", got)
		}
		before := g.sim.Stats().Start
		code, _, body := g.get("/onboarding-url?configurationId=flowB", nil)
		if code != http.StatusBadRequest || !strings.Contains(jsonError(t, body), "configurationId") {
			t.Errorf("/onboarding-url naming a flow: %d %s, want 400", code, body)
		}
		if n := g.sim.Stats().Start - before; n != 0 {
			t.Errorf("a browser naming a flow started %d upstream sessions", n)
		}
	})
}

// TestFlowsRefused: a handler is refused, the flow named, when a flow is
// listed twice or is not 1 to 128 bytes of printable ASCII without spaces
// or commas.
func TestFlowsRefused(t *testing.T) {
	for _, tc := range []struct {
		flows []string
		want  string
	}{
		{[]string{"flowA", "flowB", "flowA"}, `flow "flowA" is listed twice`},
		{[]string{""}, `flow "" must be`},
		{[]string{"flowA", "flow B"}, `flow "flow B" holds a space; separate flows with commas`},
		{[]string{"flowA,flowB"}, `flow "flowA,flowB" must be`},
		{[]string{"flów"}, `flow "flów" must be`},
		{[]string{strings.Repeat("f", 129)}, "must be 1 to 128 bytes"},
	} {
		// The flows are checked before the other parts are used:
		// stand-ins do.
		_, err := sse.New(sse.Config{Upstream: noUpstream{}, Statuses: &poller.Manager{}, Broker: &sse.Broker{}, Tokens: &sse.Tokens{},
			FlowOrigins: []string{"https://flows.example"}, Flows: tc.flows})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %s", tc.flows, err, tc.want)
		}
	}
}
