package sse_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/sse/ssetest"
)

// postWebhook sends a webhook call as the upstream would.
func (g *gateway) postWebhook(secret, body string) (int, string) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.url+"/webhooks/onboarding-status", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

func hook(id, status string) string {
	return `{"interviewId":"` + id + `","onboardingStatus":"` + status + `","clientId":"c","flowId":"f"}`
}

// TestWebhookDeliversAtOnce: with polling at one hour, only the webhook can
// bring the changes; every subscriber gets each once, in order.
func TestWebhookDeliversAtOnce(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour, webhooks: true})
	s := g.start()
	streams := []*ssetest.Stream{g.open(s, ""), g.open(s, ""), g.open(s, "")}
	var first flow.Update
	for _, st := range streams {
		first = statusOf(t, st.Next(t))
	}
	prev := first
	for _, status := range steps[1:] {
		g.setStatus(s.InterviewID, status) // the simulator pushes it
		prev = sameChange(t, streams, status, prev)
	}
	for _, st := range streams {
		if rest := st.Ended(t); len(rest) != 0 {
			t.Fatalf("extra events %v", rest)
		}
	}
	if n := g.sim.Stats().StatusByInterview[s.InterviewID]; n != 1 {
		t.Fatalf("%d upstream status calls, want only the first snapshot's", n)
	}
}

// TestWebhookAndPollDeliverOnce: a change seen by both the webhook and a
// poll is delivered once.
func TestWebhookAndPollDeliverOnce(t *testing.T) {
	g := newGateway(t, options{interval: 20 * time.Millisecond, webhooks: true, poller: poller.Config{PushInterval: 20 * time.Millisecond}})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	for _, status := range steps[1:] {
		g.setStatus(s.InterviewID, status)
		time.Sleep(60 * time.Millisecond)                                    // polls see it too
		code, _ := g.postWebhook(webhookSecret, hook(s.InterviewID, status)) // and the upstream's retry
		if code != 200 {
			t.Fatalf("webhook: %d", code)
		}
	}
	var got []string
	for _, ev := range st.Ended(t) {
		got = append(got, statusOf(t, ev).Status)
	}
	if strings.Join(got, ",") != strings.Join(steps[1:], ",") {
		t.Fatalf("got %v, want each change once: %v", got, steps[1:])
	}
}

// TestWebhookStatusesArriveInTheirOrder: every status the upstream sends
// reaches the stream in the order it arrives, Incode's orders included
// (post-processing after the face check); only a late one after the flow
// finished is ignored.
func TestWebhookStatusesArriveInTheirOrder(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{WebhookSecret: webhookSecret}})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	sent := []string{"ID_VALIDATION_FINISHED", "ID_VALIDATION_FINISHED_SECOND_ID", "GOVERNMENT_VALIDATION_FINISHED",
		"FACE_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED", "ONBOARDING_FINISHED", "FACE_VALIDATION_FINISHED"}
	for _, status := range sent {
		if code, body := g.postWebhook(webhookSecret, hook(s.InterviewID, status)); code != 200 || !strings.Contains(body, `"success":true`) {
			t.Fatalf("webhook %s: %d %s", status, code, body)
		}
	}
	for _, want := range sent[:6] {
		if u := statusOf(t, st.Next(t)); u.Status != want {
			t.Fatalf("got %s, want %s", u.Status, want)
		}
	}
	if rest := st.Ended(t); len(rest) != 0 {
		t.Fatalf("after ONBOARDING_FINISHED the stream got %v, want its end (the late FACE_VALIDATION_FINISHED ignored)", rest)
	}
	if u, _ := g.statuses.Last(s.InterviewID); u.Status != "ONBOARDING_FINISHED" {
		t.Fatalf("status %s after a late webhook, want ONBOARDING_FINISHED", u.Status)
	}
}

func TestWebhookRefusesBadCalls(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{
		WebhookSecret:  webhookSecret,
		WebhookSources: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}})
	s := g.start()
	before, _ := g.statuses.Current(t.Context(), s.InterviewID)
	cases := []struct {
		name, secret, body string
		code               int
		msg                string
	}{
		{"no secret", "", hook(s.InterviewID, "ONBOARDING_FINISHED"), 401, "bearer secret"},
		{"wrong secret", "guess", hook(s.InterviewID, "ONBOARDING_FINISHED"), 401, "bearer secret"},
		{"secret with a suffix", webhookSecret + "x", hook(s.InterviewID, "ONBOARDING_FINISHED"), 401, "bearer secret"},
		{"malformed JSON", webhookSecret, `{"interviewId":`, 400, "not the JSON object"},
		{"array", webhookSecret, `[]`, 400, "not the JSON object"},
		{"no interview", webhookSecret, `{"onboardingStatus":"ONBOARDING_FINISHED"}`, 400, "interviewId"},
		{"bad interview id", webhookSecret, hook("../x", "ONBOARDING_FINISHED"), 400, "interviewId"},
		{"no status", webhookSecret, `{"interviewId":"` + s.InterviewID + `"}`, 400, "onboardingStatus"},
		{"huge status", webhookSecret, hook(s.InterviewID, strings.Repeat("X", 200)), 400, "onboardingStatus"},
		{"oversized body", webhookSecret, `{"interviewId":"` + s.InterviewID + `","x":"` + strings.Repeat("x", 65<<10) + `"}`, 413, "too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := g.postWebhook(c.secret, c.body)
			if code != c.code || !strings.Contains(jsonError(t, body), c.msg) {
				t.Fatalf("%d %s, want %d with %q", code, body, c.code, c.msg)
			}
		})
	}
	if after, _ := g.statuses.Last(s.InterviewID); after != before {
		t.Fatalf("refused webhooks changed the status: %+v -> %+v", before, after)
	}
	t.Run("unknown interview is acknowledged", func(t *testing.T) {
		if code, body := g.postWebhook(webhookSecret, hook("someone-else", "ONBOARDING_FINISHED")); code != 200 || !strings.Contains(body, `"success":true`) {
			t.Fatalf("%d %s, want 200 so the upstream stops retrying", code, body)
		}
	})
	t.Run("source not allowed", func(t *testing.T) {
		g := newGateway(t, options{handler: sse.Config{WebhookSecret: webhookSecret, WebhookSources: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
		if code, body := g.postWebhook(webhookSecret, hook(s.InterviewID, "UNKNOWN")); code != 403 {
			t.Fatalf("%d %s, want 403", code, body)
		}
	})
	t.Run("route off without a secret", func(t *testing.T) {
		g := newGateway(t, options{})
		if code, body := g.postWebhook("x", hook(s.InterviewID, "UNKNOWN")); code != 404 {
			t.Fatalf("%d %s, want 404", code, body)
		}
	})
}

// TestWebhooksRelaxPolling: while webhooks arrive, the interview is polled
// at the safety interval only, as the simulator's call counts show.
func TestWebhooksRelaxPolling(t *testing.T) {
	const interval = 20 * time.Millisecond
	g := newGateway(t, options{interval: interval, webhooks: true, poller: poller.Config{PushInterval: 500 * time.Millisecond, PushSilence: time.Minute}})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	g.setStatus(s.InterviewID, steps[1]) // a webhook arrives
	statusOf(t, st.Next(t))
	calls := func() int64 { return g.sim.Stats().StatusByInterview[s.InterviewID] }
	before := calls()
	time.Sleep(time.Second)
	if n := calls() - before; n > 3 {
		t.Fatalf("%d status calls in 1 s after a webhook, want about 2 (the 500 ms safety interval), not 50", n)
	}
}

// post sends a request with a body and headers (name/value pairs) and
// returns the status, headers and body of the answer.
func (g *gateway) post(path, contentType, body string, hdr ...string) (int, http.Header, string) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const (
	clientID     = "incode-webhooks"
	clientSecret = "client-secret-for-tests-0123456789abcdef"
)

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// TestWebhookOAuthTokenEndpoint: POST /webhooks/token speaks OAuth 2.0
// client credentials (RFC 6749 sections 4.4 and 5): a right client gets a
// bearer access token that the webhook route takes, on every node with the
// same secret, until it expires; nothing else takes it, and every wrong
// request gets the error code the RFC names.
func TestWebhookOAuthTokenEndpoint(t *testing.T) {
	t.Parallel() // gateways of its own; it waits out a token's 2 s life
	oauth := sse.Config{WebhookClientID: clientID, WebhookClientSecret: clientSecret, WebhookTokenTTL: 2 * time.Second}
	g := newGateway(t, options{interval: time.Hour, handler: oauth})
	other := newGateway(t, options{interval: time.Hour, handler: oauth}) // another node: same secret
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, auth, contentType, body string
		code                          int
		oauthError                    string
	}{
		{"no client", "", form, "grant_type=client_credentials", 401, "invalid_client"},
		{"wrong secret", basic(clientID, "guess"), form, "grant_type=client_credentials", 401, "invalid_client"},
		{"wrong client", basic("someone", clientSecret), form, "grant_type=client_credentials", 401, "invalid_client"},
		{"bearer instead of basic", "Bearer " + clientSecret, form, "grant_type=client_credentials", 401, "invalid_client"},
		{"wrong grant", basic(clientID, clientSecret), form, "grant_type=password&username=a&password=b", 400, "unsupported_grant_type"},
		{"no grant", basic(clientID, clientSecret), form, "scope=webhooks", 400, "invalid_request"},
		{"JSON body", basic(clientID, clientSecret), "application/json", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		{"grant twice", basic(clientID, clientSecret), form, "grant_type=client_credentials&grant_type=password", 400, "invalid_request"},
		{"grant twice, the same", basic(clientID, clientSecret), form, "grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := g.post("/webhooks/token", tc.contentType, tc.body, "Authorization", tc.auth)
			var e struct{ Error string }
			json.Unmarshal([]byte(body), &e)
			if code != tc.code || e.Error != tc.oauthError || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("%d %s (Cache-Control %q), want %d with error %q", code, body, h.Get("Cache-Control"), tc.code, tc.oauthError)
			}
			if code == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without WWW-Authenticate: Basic")
			}
		})
	}

	// The right client, its id and secret form-encoded first as RFC 6749
	// section 2.3.1 says (here, nothing to encode).
	code, h, body := g.post("/webhooks/token", form, "grant_type=client_credentials", "Authorization", basic(clientID, clientSecret))
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(body), &tok); code != 200 || err != nil || tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn < 1 || tok.ExpiresIn > 2 || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %s", code, body)
	}
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	if code, body := g.postWebhook(tok.AccessToken, hook(s.InterviewID, "ID_VALIDATION_FINISHED")); code != 200 || !strings.Contains(body, `"success":true`) {
		t.Fatalf("webhook with the access token: %d %s", code, body)
	}
	if u := statusOf(t, st.Next(t)); u.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("got %+v", u)
	}
	if code, body := other.postWebhook(tok.AccessToken, hook("elsewhere", "UNKNOWN")); code != 200 {
		t.Fatalf("another node refused the access token: %d %s", code, body)
	}
	// An access token is no browser token, nor the other way round.
	if code, _, _ := g.get("/onboarding-status?interviewId="+s.InterviewID, tokenHeader(tok.AccessToken)); code != 401 {
		t.Fatalf("the access token as a browser token: %d, want 401", code)
	}
	if code, _ := g.postWebhook(s.Token, hook(s.InterviewID, "FACE_VALIDATION_FINISHED")); code != 401 {
		t.Fatalf("a browser token on the webhook: %d, want 401", code)
	}
	time.Sleep(2100 * time.Millisecond)
	if code, body := g.postWebhook(tok.AccessToken, hook(s.InterviewID, "FACE_VALIDATION_FINISHED")); code != 401 {
		t.Fatalf("an expired access token: %d %s, want 401", code, body)
	}
}

// TestWebhookSecretInPath: for an upstream that sends no Authorization
// header, the secret sits in the callback URL; a wrong one is refused,
// and the secret never reaches the log.
func TestWebhookSecretInPath(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{WebhookSecret: webhookSecret}, keepLogs: true})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	// Incode's payload, as its docs and sample backends show it.
	payload := `{"interviewId":"` + s.InterviewID + `","onboardingStatus":"ID_VALIDATION_FINISHED","clientId":"acme","flowId":"64f1","externalId":"cust-1"}`
	if code, _, body := g.post("/webhooks/onboarding-status/"+webhookSecret, "application/json", payload); code != 200 || body != "{\"success\":true}\n" {
		t.Fatalf("webhook with the secret in the path: %d %q", code, body)
	}
	if u := statusOf(t, st.Next(t)); u.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("got %+v", u)
	}
	const wrong = "a-wrong-secret-in-the-path"
	if code, _, body := g.post("/webhooks/onboarding-status/"+wrong, "application/json", payload); code != 401 || !strings.Contains(jsonError(t, body), "secret") {
		t.Fatalf("wrong secret in the path: %d %s, want 401", code, body)
	}
	// A draining node refuses the webhook before routing: still no secret.
	g.handler.Drain()
	if code, _, body := g.post("/webhooks/onboarding-status/"+webhookSecret, "application/json", payload); code != 503 || !strings.Contains(body, `"code":"draining"`) {
		t.Fatalf("webhook while draining: %d %s, want 503 draining", code, body)
	}
	for _, secret := range []string{webhookSecret, wrong} {
		if strings.Contains(g.logs.String(), secret) {
			t.Fatalf("a path secret appears in the log:\n%s", g.logs.String())
		}
	}
}

// TestWebhookConformance records the exact requests pushgate accepts from
// the upstream's webhook side, as Incode's docs and sample backends show
// them (shared/upstream-api.md, "Webhook" and "Checked against Incode's
// docs"): the OAuth token request, then webhook calls with the access
// token, with the secret in the path and no header, or with a static
// bearer; the payload with and without its optional fields.
func TestWebhookConformance(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{
		WebhookSecret: webhookSecret, WebhookClientID: clientID, WebhookClientSecret: clientSecret}})
	s := g.start()
	code, _, body := g.post("/webhooks/token", "application/x-www-form-urlencoded", "grant_type=client_credentials",
		"Authorization", basic(url.QueryEscape(clientID), url.QueryEscape(clientSecret)))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal([]byte(body), &tok); code != 200 || tok.AccessToken == "" {
		t.Fatalf("POST /webhooks/token (form, Basic): %d %s", code, body)
	}
	id := s.InterviewID
	for _, tc := range []struct {
		name, path, auth, body string
	}{
		{"OAuth access token, every field", "/webhooks/onboarding-status", "Bearer " + tok.AccessToken,
			`{"interviewId":"` + id + `","onboardingStatus":"ID_VALIDATION_FINISHED","externalId":"cust-1","clientId":"acme","flowId":"64f1c0ffee0123456789abcd"}`},
		{"secret in the path, no header", "/webhooks/onboarding-status/" + webhookSecret, "",
			`{"interviewId":"` + id + `","onboardingStatus":"FACE_VALIDATION_FINISHED","clientId":"acme","flowId":"64f1c0ffee0123456789abcd"}`},
		{"static bearer, required fields only", "/webhooks/onboarding-status", "Bearer " + webhookSecret,
			`{"interviewId":"` + id + `","onboardingStatus":"POST_PROCESSING_FINISHED"}`},
		{"a field Incode may add", "/webhooks/onboarding-status", "Bearer " + webhookSecret,
			`{"interviewId":"` + id + `","onboardingStatus":"ONBOARDING_FINISHED","timestamp":1767225600000}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := g.post(tc.path, "application/json", tc.body, "Authorization", tc.auth)
			if code != 200 || body != "{\"success\":true}\n" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Fatalf("POST %s: %d %q, want 200 {\"success\":true}", tc.path, code, body)
			}
		})
	}
	if u, _ := g.statuses.Last(id); u.Status != "ONBOARDING_FINISHED" {
		t.Fatalf("status %s after the calls, want ONBOARDING_FINISHED", u.Status)
	}
}

// TestLateWebhooksNeverMoveBack: the upstream retries a failed webhook up
// to half an hour later, and its status API lags behind its webhooks. A
// status the interview moved past never comes back, on the stream, on
// /onboarding-status or on GET /v1/sessions; a new status still arrives
// at once, and ONBOARDING_FINISHED sent twice gives one event.
func TestLateWebhooksNeverMoveBack(t *testing.T) {
	g := newGateway(t, options{interval: 20 * time.Millisecond, poller: poller.Config{PushInterval: 40 * time.Millisecond},
		handler: sse.Config{WebhookSecret: webhookSecret, APITokens: []string{apiToken}}})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	reads := func() int64 { return g.sim.Stats().StatusByInterview[s.InterviewID] }
	push := func(status string) {
		t.Helper()
		if code, body := g.postWebhook(webhookSecret, hook(s.InterviewID, status)); code != 200 || !strings.Contains(body, `"success":true`) {
			t.Fatalf("webhook %s: %d %s, want 200 so the upstream stops retrying", status, code, body)
		}
	}
	push("ID_VALIDATION_FINISHED")
	push("FACE_VALIDATION_FINISHED")
	// The upstream's reads lag: they answer the status before the webhooks.
	g.setStatus(s.InterviewID, "ID_VALIDATION_FINISHED")
	before := reads()
	eventually(t, "the safety polls read the lagging status", func() bool { return reads() >= before+5 })
	push("ID_VALIDATION_FINISHED") // the upstream's late retry
	push("UNKNOWN")
	if code, _, body := g.get("/onboarding-status?interviewId="+s.InterviewID, tokenHeader(s.Token)); code != 200 || !strings.Contains(body, `"FACE_VALIDATION_FINISHED"`) {
		t.Fatalf("GET /onboarding-status: %d %s, want FACE_VALIDATION_FINISHED", code, body)
	}
	if got := g.state(s.InterviewID); got.OnboardingStatus != "FACE_VALIDATION_FINISHED" {
		t.Fatalf("GET /v1/sessions: %+v, want FACE_VALIDATION_FINISHED", got)
	}
	sent := time.Now()
	push("GOVERNMENT_VALIDATION_FINISHED")
	if u := statusOf(t, st.Next(t)); u.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("got %+v", u)
	}
	if u := statusOf(t, st.Next(t)); u.Status != "FACE_VALIDATION_FINISHED" {
		t.Fatalf("got %+v, want FACE_VALIDATION_FINISHED: nothing the interview moved past", u)
	}
	if u := statusOf(t, st.Next(t)); u.Status != "GOVERNMENT_VALIDATION_FINISHED" {
		t.Fatalf("got %+v, want the new GOVERNMENT_VALIDATION_FINISHED", u)
	}
	t.Logf("a new status reached the stream %v after its webhook was sent", time.Since(sent).Round(time.Microsecond))
	push(flow.StatusFinished)
	push(flow.StatusFinished)
	if u := statusOf(t, st.Next(t)); u.Status != flow.StatusFinished {
		t.Fatalf("got %+v", u)
	}
	if rest := st.Ended(t); len(rest) != 0 {
		t.Fatalf("after ONBOARDING_FINISHED the stream got %v, want its end", rest)
	}
	if n := pollertest.Metric(t, g.metrics, "pushgate_webhooks_total", "result", "older"); n != 2 {
		t.Fatalf("%v webhooks counted older, want the late ID_VALIDATION_FINISHED and UNKNOWN", n)
	}
}

// TestWebhookBodies: interviewId and onboardingStatus are checked; every
// other field, of any JSON type and any name, is ignored, so it can never
// make the upstream retry. A status the upstream does not document is
// acknowledged and changes nothing; one that is no status name is 400.
func TestWebhookBodies(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{WebhookSecret: webhookSecret}})
	s := g.start()
	id := s.InterviewID
	statuses := []string{"ID_VALIDATION_FINISHED", "ID_VALIDATION_FINISHED_SECOND_ID", "GOVERNMENT_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED"}
	for i, extra := range []string{
		`"externalId":12345`,
		`"externalId":null,"clientId":{"name":"acme"},"flowId":["a","b"]`,
		`"clientId":42.5,"flowId":true,"externalId":"cust-1"`,
		`"timestamp":1767225600000,"nested":{"deep":[1,{"x":null}]}`,
		`"interviewCode":"ABC123","configurationId":7,"flowId":"a","flowId":"b","clientId":1,"ClientId":2`,
	} {
		body := `{"interviewId":"` + id + `","onboardingStatus":"` + statuses[i] + `",` + extra + `}`
		if code, resp := g.postWebhook(webhookSecret, body); code != 200 || !strings.Contains(resp, `"success":true`) {
			t.Fatalf("%s: %d %s, want 200", body, code, resp)
		}
		if u, _ := g.statuses.Last(id); u.Status != statuses[i] {
			t.Fatalf("after %s: %s, want %s", body, u.Status, statuses[i])
		}
	}
	big := `{"interviewId":"` + id + `","onboardingStatus":"POST_PROCESSING_FINISHED","note":"` + strings.Repeat("x", 16<<10) + `"}`
	if code, body := g.postWebhook(webhookSecret, big); code != 200 {
		t.Fatalf("a 16 KiB webhook body: %d %s, want 200", code, body)
	}
	before, _ := g.statuses.Last(id)
	for _, status := range []string{"SOMETHING_INCODE_ADDS_LATER", "expired", "Face_Validation_Finished"} {
		if code, body := g.postWebhook(webhookSecret, hook(id, status)); code != 200 || !strings.Contains(body, `"success":true`) {
			t.Fatalf("undocumented status %s: %d %s, want 200", status, code, body)
		}
	}
	if after, _ := g.statuses.Last(id); after != before {
		t.Fatalf("an undocumented pushed status changed the interview: %+v -> %+v", before, after)
	}
	if n := pollertest.Metric(t, g.metrics, "pushgate_webhooks_total", "result", "unknown_status"); n != 3 {
		t.Fatalf("%v webhooks counted unknown_status, want 3", n)
	}
	for _, tc := range []struct{ name, body, msg string }{
		{"numeric interviewId", `{"interviewId":12345,"onboardingStatus":"UNKNOWN"}`, "not the JSON object expected"},
		{"status given twice", `{"interviewId":"` + id + `","onboardingStatus":"UNKNOWN","OnboardingStatus":"ONBOARDING_FINISHED"}`, "more than once"},
		{"numeric status", `{"interviewId":"` + id + `","onboardingStatus":7}`, "not the JSON object expected"},
		{"status with a space", hook(id, "FACE VALIDATION"), "onboardingStatus"},
		{"status with a dash", hook(id, "FACE-VALIDATION"), "onboardingStatus"},
		{"status with markup", hook(id, `<b>x</b>`), "onboardingStatus"},
		{"status of 65 bytes", hook(id, strings.Repeat("A", 65)), "onboardingStatus"},
		{"empty status", hook(id, ""), "onboardingStatus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := g.postWebhook(webhookSecret, tc.body)
			if code != 400 || !strings.Contains(jsonError(t, body), tc.msg) {
				t.Fatalf("%d %s, want 400 naming %q", code, body, tc.msg)
			}
		})
	}
	if after, _ := g.statuses.Last(id); after != before {
		t.Fatalf("refused webhooks changed the interview: %+v -> %+v", before, after)
	}
}

// TestWebhookCustomHeader: the static custom header set in the upstream's
// dashboard authenticates webhook calls; a wrong or missing value is 401.
func TestWebhookCustomHeader(t *testing.T) {
	const name, value = "X-Incode-Hook", "a-custom-header-value-of-32-bytes-or-more"
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{WebhookHeaderName: name, WebhookHeaderValue: value}})
	s := g.start()
	body := hook(s.InterviewID, "ID_VALIDATION_FINISHED")
	for _, tc := range []struct {
		name string
		hdr  []string
		code int
	}{
		{"no header", nil, 401},
		{"wrong value", []string{name, value + "x"}, 401},
		{"a prefix of the value", []string{name, value[:32]}, 401},
		{"the value as a bearer", []string{"Authorization", "Bearer " + value}, 401},
		{"the right header", []string{name, value}, 200},
		{"the right header, its name in lower case", []string{strings.ToLower(name), value}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, resp := g.post("/webhooks/onboarding-status", "application/json", body, tc.hdr...)
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, resp, tc.code)
			}
			if code == 401 && !strings.Contains(jsonError(t, resp), name) {
				t.Fatalf("401 %s, want the header named", resp)
			}
		})
	}
	if u, _ := g.statuses.Last(s.InterviewID); u.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("status %s, want the webhook's", u.Status)
	}
	t.Run("the header twice", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, g.url+"/webhooks/onboarding-status", strings.NewReader(hook(s.InterviewID, "FACE_VALIDATION_FINISHED")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add(name, "a-wrong-value-that-comes-first-32-bytes")
		req.Header.Add(name, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("%d, want 401: a call carries the header once", resp.StatusCode)
		}
	})
	t.Run("beside a bearer secret", func(t *testing.T) {
		g := newGateway(t, options{interval: time.Hour, handler: sse.Config{WebhookHeaderName: name, WebhookHeaderValue: value, WebhookSecret: webhookSecret}})
		s := g.start()
		for _, hdr := range [][]string{{name, value}, {"Authorization", "Bearer " + webhookSecret}} {
			if code, _, resp := g.post("/webhooks/onboarding-status", "application/json", hook(s.InterviewID, "UNKNOWN"), hdr...); code != 200 {
				t.Fatalf("%v: %d %s, want 200", hdr, code, resp)
			}
		}
		if code, _, _ := g.post("/webhooks/onboarding-status", "application/json", hook(s.InterviewID, "UNKNOWN"), name, "wrong"); code != 401 {
			t.Fatalf("a wrong header value: %d, want 401", code)
		}
	})
}

func TestCheckWebhookHeader(t *testing.T) {
	const value = "a-custom-header-value-of-32-bytes-or-more"
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"X-Incode-Hook", value, true},
		{"Authorization", "Bearer " + value, true},
		{"x-lower-case", value, true},
		{"X-Incode-Hook", value[:31], false}, // too short
		{"X Incode", value, false},           // not a header name
		{"", value, false},
		{"Host", value, false},              // the server takes it out of the headers
		{"transfer-encoding", value, false}, // framing
		{"Connection", value, false},        // hop by hop: a proxy drops it
		{"Proxy-Authorization", value, false},
		{"Content-Type", value, false},
		{"X-Incode-Hook", " " + value, false}, // HTTP trims it: it could never match
		{"X-Incode-Hook", value + "\n", false},
	} {
		cfg := sse.Config{WebhookHeaderName: tc.name, WebhookHeaderValue: tc.value}
		if err := cfg.Check(func(field string) string { return field }); (err == nil) != tc.ok {
			t.Errorf("Check of header %q, value %q = %v, want ok %v", tc.name, tc.value, err, tc.ok)
		}
	}
}
