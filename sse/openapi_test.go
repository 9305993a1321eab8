package sse_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/pushgate/pushgate/public"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/relay/relaytest"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream"
)

// openAPIFile describes every route of the gateway.
const openAPIFile = "../docs/openapi.yaml"

// TestOpenAPI holds docs/openapi.yaml to a running gateway: the document
// is valid OpenAPI 3.1; it lists exactly the routes the gateway serves;
// and every operation, driven with real requests (valid credentials and
// the document's example bodies for its successes, and at least one
// refusal), answers a status it documents, with headers and a body its
// schema takes.
func TestOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	p := newOpenAPIProber(t, doc)

	const origin = "https://app.example"
	backend := relaytest.New(t, func(int, relaytest.Attempt) (int, http.Header) { return http.StatusBadRequest, nil }) // refuses every relayed event
	g := newGateway(t, options{page: public.Files, handler: sse.Config{
		AllowedOrigins: []string{origin},
		APITokens:      []string{apiToken},
		Flows:          []string{"pushgate-sim-flow", "65a1f0c2e4b7d9a3c8e6f1b0"}, // the default, and the example's
		WebhookSecret:  webhookSecret, WebhookClientID: clientID, WebhookClientSecret: clientSecret,
	}, relay: relay.Config{URLs: []string{backend.URL}, Secrets: []string{relaytest.Secret}, Logger: quiet}})
	// As production runs it (-public-sessions=false), and with nothing on
	// (no API token, no webhooks).
	backendOnly := newGateway(t, options{handler: sse.Config{BackendSessionsOnly: true, APITokens: []string{apiToken}}})
	plain := newGateway(t, options{})

	served := map[string]bool{}
	for _, r := range g.handler.Routes() {
		served[r] = true
	}
	t.Run("routes", func(t *testing.T) { checkDocumentedRoutes(t, doc, served) })

	// The page and its files, from public/ as embedded.
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			if !slices.Contains(op.Tags, "page") || !served[method+" "+path] {
				continue
			}
			p.do(g, openAPICall{method: method, path: path, want: firstSuccess(op), valid: true})
			if op.Responses.Status(http.StatusPartialContent) != nil {
				p.do(g, openAPICall{method: method, path: path, header: http.Header{"Range": {"bytes=0-3"}}, want: http.StatusPartialContent, valid: true})
			}
			if op.Responses.Status(http.StatusRequestedRangeNotSatisfiable) != nil {
				p.do(g, openAPICall{method: method, path: path, header: http.Header{"Range": {"bytes=99999999-"}}, want: http.StatusRequestedRangeNotSatisfiable, valid: true})
			}
		}
	}

	// Operations.
	p.do(g, openAPICall{method: "GET", path: "/healthz", want: 200, valid: true})
	p.do(g, openAPICall{method: "HEAD", path: "/healthz", want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/readyz", want: 200, valid: true})
	p.do(g, openAPICall{method: "HEAD", path: "/readyz", want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/metrics", want: 200, valid: true})
	plain.handler.Unready()
	p.do(plain, openAPICall{method: "GET", path: "/readyz", want: 503, valid: true})
	p.do(plain, openAPICall{method: "HEAD", path: "/readyz", want: 503, valid: true})

	// Starting sessions from the browser.
	p.do(g, openAPICall{method: "GET", path: "/onboarding-url", want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/onboarding-url?language=es-MX", want: 200, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/onboarding-url", want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/onboarding-url?customFields=x", want: 400})
	p.do(g, openAPICall{method: "POST", path: "/onboarding-url?language=en_US!", want: 400})
	p.do(g, openAPICall{method: "POST", path: "/onboarding-url", body: strings.Repeat("x", 5000), want: 413})
	p.do(backendOnly, openAPICall{method: "GET", path: "/onboarding-url", want: 404, valid: true})

	// The browser's routes, with each way of presenting the token.
	s, other := g.start(), g.start()
	id := "?interviewId=" + s.InterviewID
	cookie := http.Header{"Cookie": {s.cookie.Name + "=" + s.cookie.Value}}
	unknownToken, _ := g.tokens.Issue("never-started")
	p.do(g, openAPICall{method: "GET", path: "/onboarding-status" + id, header: tokenHeader(s.Token), want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/onboarding-status" + id, header: cookie, want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/onboarding-status" + id, header: bearer(s.Token), want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/onboarding-status", header: tokenHeader(s.Token), want: 400})
	p.do(g, openAPICall{method: "GET", path: "/onboarding-status" + id, want: 401})
	p.do(g, openAPICall{method: "GET", path: "/onboarding-status?interviewId=" + other.InterviewID, header: tokenHeader(s.Token), want: 403, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/onboarding-status?interviewId=never-started", header: tokenHeader(unknownToken), want: 404, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/fetch-score" + id, header: tokenHeader(s.Token), want: 409, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/fetch-score" + id, header: tokenHeader("v1.forged.token"), want: 401})
	p.do(g, openAPICall{method: "GET", path: "/events?interviewId=bad$id", header: tokenHeader(s.Token), want: 400})
	p.do(g, openAPICall{method: "GET", path: "/events" + id, header: http.Header{"X-Token": {s.Token}, "Last-Event-ID": {"-1"}}, want: 400})
	p.do(g, openAPICall{method: "GET", path: "/events" + id, want: 401})
	p.do(g, openAPICall{method: "GET", path: "/events?interviewId=" + other.InterviewID, header: tokenHeader(s.Token), want: 403, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/events?interviewId=never-started", header: tokenHeader(unknownToken), want: 404, valid: true})

	// A finished flow: the verdict, the whole stream, then 204 for a
	// client that saw its end.
	done := g.start()
	g.setStatus(done.InterviewID, "ONBOARDING_FINISHED")
	doneID := "?interviewId=" + done.InterviewID
	p.do(g, openAPICall{method: "GET", path: "/fetch-score" + doneID, header: bearer(done.Token), want: 200, valid: true, retry: true})
	_, stream := p.do(g, openAPICall{method: "GET", path: "/events" + doneID, header: tokenHeader(done.Token), want: 200, valid: true})
	last := checkEvents(t, doc, stream)
	if last.event != "status" || last.status != "ONBOARDING_FINISHED" {
		t.Errorf("the finished flow's stream ended with %+v, want the ONBOARDING_FINISHED status event", last)
	}
	p.do(g, openAPICall{method: "GET", path: "/events" + doneID,
		header: http.Header{"X-Token": {done.Token}, "Last-Event-ID": {last.id}}, want: 204, valid: true})

	// A session the upstream forgot: 410, and a stream that ends with the
	// end event.
	gone := g.start()
	if err := g.sim.Expire(gone.InterviewID); err != nil {
		t.Fatal(err)
	}
	goneID := "?interviewId=" + gone.InterviewID
	p.do(g, openAPICall{method: "GET", path: "/onboarding-status" + goneID, header: tokenHeader(gone.Token), want: 410, valid: true, retry: true})
	p.do(g, openAPICall{method: "GET", path: "/fetch-score" + goneID, header: tokenHeader(gone.Token), want: 410, valid: true})
	_, stream = p.do(g, openAPICall{method: "GET", path: "/events" + goneID, header: tokenHeader(gone.Token), want: 200, valid: true})
	if last := checkEvents(t, doc, stream); last.event != "end" {
		t.Errorf("the forgotten session's stream ended with %+v, want the end event", last)
	}

	// CORS preflights.
	preflight := func(origin string) http.Header {
		return http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"}}
	}
	for _, path := range []string{"/onboarding-url", "/events", "/onboarding-status", "/fetch-score"} {
		p.do(g, openAPICall{method: "OPTIONS", path: path, header: preflight(origin), want: 204, valid: true})
		p.do(g, openAPICall{method: "OPTIONS", path: path, header: preflight("https://elsewhere.example"), want: 403, valid: true})
	}
	for _, path := range []string{"/v1/sessions", "/v1/sessions/import", "/v1/sessions/" + s.InterviewID, "/v1/relay/failed", "/v1/relay/failed/msg_x/redeliver"} {
		p.do(g, openAPICall{method: "OPTIONS", path: path, header: preflight(origin), want: 403, valid: true})
	}

	// The server API.
	api := func(contentType string) http.Header {
		h := http.Header{"Authorization": {"Bearer " + apiToken}}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		return h
	}
	createExample := exampleJSON(t, doc.Paths.Value("/v1/sessions").Post.RequestBody.Value.Content.Get("application/json").Example, nil)
	_, body := p.do(g, openAPICall{method: "POST", path: "/v1/sessions", header: api("application/json"), body: createExample, want: 201, valid: true})
	var c created
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions", header: api(""), want: 201, valid: true}) // an empty body
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions", header: api("application/json"), body: `{"flowId":"x"}`, want: 400})
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions", header: api("application/json"), body: `{"configurationId":"not-a-flow"}`, want: 400, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions", header: http.Header{"Content-Type": {"application/json"}}, body: `{}`, want: 401})
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions", header: api("text/plain"), body: `{}`, want: 415})
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions", header: api("application/json"), body: `{"externalCustomerId":"` + strings.Repeat("x", 5000) + `"}`, want: 413})
	p.do(plain, openAPICall{method: "POST", path: "/v1/sessions", header: api("application/json"), body: `{}`, want: 404, valid: true})

	client, err := upstream.New(upstream.Config{BaseURL: g.simURL, APIKey: simAPIKey, FlowID: "backend-flow"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	up, err := client.Start(t.Context(), upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flowURL, err := client.OnboardingURL(t.Context(), up)
	if err != nil {
		t.Fatal(err)
	}
	importBody := exampleJSON(t, doc.Paths.Value("/v1/sessions/import").Post.RequestBody.Value.Content.Get("application/json").Example,
		map[string]any{"interviewId": up.InterviewID, "sessionToken": up.Token, "url": flowURL})
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions/import", header: api("application/json"), body: importBody, want: 201, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions/import", header: api("application/json"), body: `{"interviewId":"abc"}`, want: 400})
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions/import", header: api("application/json"), body: `{"interviewId":"abc","sessionToken":"made-up"}`, want: 422, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/v1/sessions/import", header: api(""), body: `{}`, want: 415})

	p.do(g, openAPICall{method: "GET", path: "/v1/sessions/" + c.InterviewID, header: api(""), want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/v1/sessions/" + done.InterviewID, header: api(""), want: 200, valid: true}) // with its score
	p.do(g, openAPICall{method: "GET", path: "/v1/sessions/" + gone.InterviewID, header: api(""), want: 410, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/v1/sessions/bad%24id", header: api(""), want: 400})
	p.do(g, openAPICall{method: "GET", path: "/v1/sessions/never-started", header: api(""), want: 404, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/v1/sessions/" + c.InterviewID, header: bearer(c.Token), want: 401})

	// Webhooks, three ways.
	hooked := g.start()
	webhookExample := doc.Components.RequestBodies["Webhook"].Value.Content.Get("application/json").Example
	webhook := func(status string) string {
		return exampleJSON(t, webhookExample, map[string]any{"interviewId": hooked.InterviewID, "onboardingStatus": status})
	}
	jsonWith := func(auth string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		return h
	}
	p.do(g, openAPICall{method: "POST", path: "/webhooks/onboarding-status", header: jsonWith("Bearer " + webhookSecret), body: webhook("ID_VALIDATION_FINISHED"), want: 200, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/webhooks/onboarding-status", header: jsonWith(""), body: webhook("ID_VALIDATION_FINISHED"), want: 401})
	p.do(g, openAPICall{method: "POST", path: "/webhooks/onboarding-status", header: jsonWith("Bearer " + webhookSecret), body: `{"interviewId":`, want: 400})
	p.do(g, openAPICall{method: "POST", path: "/webhooks/onboarding-status/" + webhookSecret, header: jsonWith(""), body: webhook("FACE_VALIDATION_FINISHED"), want: 200, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/webhooks/onboarding-status/not-the-secret", header: jsonWith(""), body: webhook("FACE_VALIDATION_FINISHED"), want: 401, valid: true})

	form := func(auth string) http.Header {
		return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {auth}}
	}
	_, body = p.do(g, openAPICall{method: "POST", path: "/webhooks/token", header: form(basic(clientID, clientSecret)), body: "grant_type=client_credentials", want: 200, valid: true})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		t.Fatal(err)
	}
	p.do(g, openAPICall{method: "POST", path: "/webhooks/token", header: form(basic(clientID, "guess")), body: "grant_type=client_credentials", want: 401})
	p.do(g, openAPICall{method: "POST", path: "/webhooks/token", header: form(basic(clientID, clientSecret)), body: "grant_type=password", want: 400})
	p.do(g, openAPICall{method: "POST", path: "/webhooks/onboarding-status", header: jsonWith("Bearer " + tok.AccessToken), body: webhook("POST_PROCESSING_FINISHED"), want: 200, valid: true})
	if u, _ := g.statuses.Last(hooked.InterviewID); u.Status != "POST_PROCESSING_FINISHED" {
		t.Errorf("after the webhooks the status is %q, want POST_PROCESSING_FINISHED", u.Status)
	}

	// The relay: the backend refused the webhooks above, which are listed
	// as failed, and redelivered.
	var failed struct {
		Failed []struct{ ID string }
	}
	eventually(t, "the relayed webhooks are listed as failed", func() bool {
		_, body := p.do(g, openAPICall{method: "GET", path: "/v1/relay/failed", header: api(""), want: 200, valid: true})
		return json.Unmarshal([]byte(body), &failed) == nil && len(failed.Failed) > 0
	})
	p.do(g, openAPICall{method: "GET", path: "/v1/relay/failed?limit=5", header: api(""), want: 200, valid: true})
	p.do(g, openAPICall{method: "GET", path: "/v1/relay/failed?limit=0", header: api(""), want: 400})
	p.do(g, openAPICall{method: "GET", path: "/v1/relay/failed", want: 401})
	p.do(g, openAPICall{method: "POST", path: "/v1/relay/failed/" + failed.Failed[0].ID + "/redeliver", header: api(""), want: 202, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/v1/relay/failed/msg_NOTFAILED/redeliver", header: api(""), want: 404, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/v1/relay/failed/bad%24id/redeliver", header: api(""), want: 400, valid: true})

	// Wrong webhook credentials past their burst: every webhook route then
	// answers 429 to this address. Last, since the calls above come from it.
	for range 10 {
		g.post("/webhooks/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", "Authorization", basic(clientID, "guess"))
	}
	p.do(g, openAPICall{method: "POST", path: "/webhooks/token", header: form(basic(clientID, clientSecret)), body: "grant_type=client_credentials", want: 429, valid: true})
	p.do(g, openAPICall{method: "POST", path: "/webhooks/onboarding-status", header: jsonWith("Bearer " + webhookSecret), body: webhook("ONBOARDING_FINISHED"), want: 429, valid: true})

	t.Run("every operation probed", func(t *testing.T) { p.checkCoverage(t, served) })
}

// bearer is an Authorization header with a bearer token.
func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// loadOpenAPI loads and validates the document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.IsOpenAPI32OrLater() {
		t.Fatalf("%s is OpenAPI %s, want 3.1", openAPIFile, doc.OpenAPI)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("%s: %v", openAPIFile, err)
	}
	return doc
}

// checkDocumentedRoutes: the document's operations (all but the CORS
// preflights, which are answered before routing) are the routes the
// gateway serves, and public/ has a documented route for each page file.
// Only the browser client's routes may be documented ahead of public/.
func checkDocumentedRoutes(t *testing.T, doc *openapi3.T, served map[string]bool) {
	documented := map[string]bool{}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(path).Operations() {
			if method != http.MethodOptions {
				documented[method+" "+path] = true
			}
		}
	}
	for _, r := range slices.Sorted(maps.Keys(served)) {
		if !documented[r] {
			t.Errorf("the gateway serves %s, which %s does not document", r, openAPIFile)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(documented)) {
		if served[r] {
			continue
		}
		t.Errorf("%s documents %s, which the gateway does not serve", openAPIFile, r)
	}
	entries, err := fs.ReadDir(public.Files, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := "/" + e.Name()
		if e.Name() == "index.html" {
			path = "/"
		}
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			if !documented[m+" "+path] {
				t.Errorf("public/%s is served at %s %s, which %s does not document", e.Name(), m, path, openAPIFile)
			}
		}
	}
}

// firstSuccess is the lowest 2xx status an operation documents.
func firstSuccess(op *openapi3.Operation) int {
	for code := 200; code < 300; code++ {
		if op.Responses.Status(code) != nil {
			return code
		}
	}
	return 0
}

// exampleJSON is a documented example, with the fields of set replaced:
// the values a live gateway takes.
func exampleJSON(t *testing.T, example any, set map[string]any) string {
	t.Helper()
	ex, ok := example.(map[string]any)
	if !ok {
		t.Fatalf("example %v is not an object", example)
	}
	out := maps.Clone(ex)
	maps.Copy(out, set)
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openAPICall is one request to a gateway, and the status it must get.
type openAPICall struct {
	method string
	path   string // with its query
	header http.Header
	body   string
	want   int
	valid  bool // the request follows the document: it must pass ValidateRequest
	retry  bool // repeat it until it gets want, for a while: the gateway learns of changes by polling
}

// openAPIProber sends calls, checks each answer against the document and
// keeps, by operation, the statuses seen.
type openAPIProber struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	client *http.Client
	seen   map[string][]int // by "METHOD /documented/path"
}

func newOpenAPIProber(t *testing.T, doc *openapi3.T) *openAPIProber {
	t.Helper()
	// Route by path alone: the gateways listen wherever the test put them.
	servers := doc.Servers
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	doc.Servers = servers
	if err != nil {
		t.Fatal(err)
	}
	// Bodies other than JSON are checked as text against their schemas.
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "application/javascript", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &openAPIProber{t: t, doc: doc, router: router, seen: map[string][]int{}, client: &http.Client{
		Transport:     transport,
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends c to g and checks the answer: the status c wants, documented
// for the operation, with the headers and body the document describes.
// It returns the answer's headers and body.
func (p *openAPIProber) do(g *gateway, c openAPICall) (http.Header, string) {
	t := p.t
	t.Helper()
	name := c.method + " " + c.path
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, err := http.NewRequest(c.method, g.url+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range c.header {
			req.Header[k] = v
		}
		route, params, err := p.router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s: no operation in %s: %v", name, openAPIFile, err)
		}
		input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: presentCredential, MultiError: true}}
		if c.valid {
			if err := openapi3filter.ValidateRequest(t.Context(), input); err != nil {
				t.Errorf("%s: the request does not follow %s: %v", name, openAPIFile, err)
			}
			req.Body = http.NoBody
			if c.body != "" {
				req.Body = io.NopCloser(strings.NewReader(c.body)) // ContentLength stays the body's
			}
		}
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: reading the answer: %v", name, err)
		}
		if resp.StatusCode != c.want && c.retry && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		op := route.Method + " " + route.Path
		p.seen[op] = append(p.seen[op], resp.StatusCode)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, truncateBody(body), c.want)
			return resp.Header, string(body)
		}
		if route.Operation.Responses.Status(resp.StatusCode) == nil {
			t.Errorf("%s: %d, which %s does not document for %s", name, resp.StatusCode, openAPIFile, op)
			return resp.Header, string(body)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: input, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
		if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
			t.Errorf("%s: %d %s: the answer does not follow %s: %v", name, resp.StatusCode, truncateBody(body), openAPIFile, err)
		}
		return resp.Header, string(body)
	}
}

// checkCoverage: every documented operation the gateway serves was
// probed, answered a documented success when it has one, and a documented
// refusal when it has any.
func (p *openAPIProber) checkCoverage(t *testing.T, served map[string]bool) {
	operations := 0
	for _, path := range p.doc.Paths.InMatchingOrder() {
		for method, op := range p.doc.Paths.Value(path).Operations() {
			key := method + " " + path
			if method != http.MethodOptions && !served[key] {
				continue // reported by checkDocumentedRoutes when it matters
			}
			operations++
			seen := p.seen[key]
			if len(seen) == 0 {
				t.Errorf("%s: not probed", key)
				continue
			}
			if firstSuccess(op) != 0 && !slices.ContainsFunc(seen, func(c int) bool { return c < 300 }) {
				t.Errorf("%s: no success among %v", key, seen)
			}
			refuses := slices.ContainsFunc(slices.Collect(maps.Keys(op.Responses.Map())), func(c string) bool { n, _ := strconv.Atoi(c); return n >= 400 })
			if refuses && !slices.ContainsFunc(seen, func(c int) bool { return c >= 400 }) {
				t.Errorf("%s: no refusal among %v", key, seen)
			}
		}
	}
	t.Logf("%d operations probed", operations)
}

// presentCredential is the AuthenticationFunc of ValidateRequest: the
// request carries the credential the security scheme names, where it
// names it.
func presentCredential(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r, s := in.RequestValidationInput.Request, in.SecurityScheme
	switch {
	case s.Type == "http" && s.Scheme == "bearer", s.Type == "oauth2":
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			return nil
		}
	case s.Type == "http" && s.Scheme == "basic":
		if _, _, ok := r.BasicAuth(); ok {
			return nil
		}
	case s.Type == "apiKey" && s.In == "header":
		if r.Header.Get(s.Name) != "" {
			return nil
		}
	case s.Type == "apiKey" && s.In == "cookie":
		if _, err := r.Cookie(strings.ReplaceAll(s.Name, "{interviewId}", r.URL.Query().Get("interviewId"))); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no %s credential", in.SecuritySchemeName)
}

// sseEvent is one event of a stream.
type sseEvent struct {
	event, id, status string
}

// checkEvents parses a whole stream, checks each event's data against
// its schema (StatusEvent, EndEvent) and its id against the data's seq,
// and returns the last event.
func checkEvents(t *testing.T, doc *openapi3.T, stream string) sseEvent {
	t.Helper()
	var last sseEvent
	for frame := range strings.SplitSeq(stream, "\n\n") {
		var ev sseEvent
		var data string
		for line := range strings.SplitSeq(frame, "\n") {
			field, value, _ := strings.Cut(line, ": ")
			switch field {
			case "event":
				ev.event = value
			case "id":
				ev.id = value
			case "data":
				data = value
			}
		}
		if ev.event == "" {
			continue // a heartbeat or a retry hint
		}
		schema := map[string]string{"status": "StatusEvent", "end": "EndEvent"}[ev.event]
		if schema == "" {
			t.Errorf("event %q in the stream: not documented", ev.event)
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Errorf("event %s: data %q: %v", ev.event, data, err)
			continue
		}
		if err := doc.Components.Schemas[schema].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("event %s: data %s does not follow %s: %v", ev.event, data, schema, err)
		}
		if seq, ok := v["seq"].(float64); ok && strconv.FormatFloat(seq, 'f', -1, 64) != ev.id {
			t.Errorf("event %s: id %s, data's seq %v", ev.event, ev.id, v["seq"])
		}
		ev.status, _ = v["onboardingStatus"].(string)
		last = ev
	}
	if last.event == "" {
		t.Errorf("no event in the stream %q", stream)
	}
	return last
}

func truncateBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
