package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Secrets the errors must never show.
const (
	testKey   = "api-key-SECRET-7f3a"
	testAdmin = "admin-token-SECRET-91c2"
)

// newServer serves h and closes it when the test ends.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newSim serves a Simulator that knows testKey and testAdmin.
func newSim(t *testing.T) (*simulator.Simulator, *httptest.Server) {
	t.Helper()
	sim := simulator.New(simulator.Config{APIKey: testKey, AdminToken: testAdmin})
	return sim, newServer(t, sim)
}

// newClient returns a Client whose idle connections close when the test ends.
func newClient(t *testing.T, cfg upstream.Config) *upstream.Client {
	t.Helper()
	c, err := upstream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// recorded is what a recorder saw of one request.
type recorded struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// recorder forwards to next and keeps every request.
type recorder struct {
	next http.Handler
	mu   sync.Mutex // protects reqs
	reqs []recorded
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	rc.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	rc.next.ServeHTTP(w, r)
}

func (rc *recorder) last() recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.reqs[len(rc.reqs)-1]
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  upstream.Config
		ok   bool
	}{
		{"https", upstream.Config{BaseURL: "https://demo-api.incodesmile.com"}, true},
		{"http with path and slash", upstream.Config{BaseURL: "http://127.0.0.1:8090/api/"}, true},
		{"empty", upstream.Config{}, false},
		{"relative", upstream.Config{BaseURL: "/omni"}, false},
		{"no scheme", upstream.Config{BaseURL: "demo-api.incodesmile.com"}, false},
		{"ftp", upstream.Config{BaseURL: "ftp://example.com"}, false},
		{"no host", upstream.Config{BaseURL: "https://"}, false},
		{"query", upstream.Config{BaseURL: "https://example.com?x=1"}, false},
		{"unparsable", upstream.Config{BaseURL: "http://[::1"}, false},
		{"negative timeout", upstream.Config{BaseURL: "https://example.com", Timeout: -time.Second}, false},
		{"negative max bytes", upstream.Config{BaseURL: "https://example.com", MaxResponseBytes: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := upstream.New(tt.cfg)
			if (err == nil) != tt.ok || (c != nil) != tt.ok {
				t.Fatalf("New(%+v) = %v, %v; want ok=%v", tt.cfg, c, err, tt.ok)
			}
		})
	}
}

func TestStartAndOnboardingURL(t *testing.T) {
	sim, _ := newSim(t)
	rec := &recorder{next: sim}
	srv := newServer(t, rec)
	c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, FlowID: "flow-42"})
	ctx := context.Background()

	tests := []struct {
		name     string
		opts     upstream.StartOptions
		wantBody map[string]string
	}{
		{"no options", upstream.StartOptions{},
			map[string]string{"configurationId": "flow-42", "countryCode": "ALL", "language": "en-US"}},
		{"options", upstream.StartOptions{ExternalCustomerID: "cust-1", RedirectionURL: "https://app.example/done"},
			map[string]string{"configurationId": "flow-42", "countryCode": "ALL", "language": "en-US",
				"externalCustomerId": "cust-1", "redirectionUrl": "https://app.example/done"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := c.Start(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.InterviewID) != 24 || s.Token == "" || s.InterviewCode == "" || s.FlowType != "flow" ||
				s.ClientID == "" || s.Env != "sim" || s.ExistingSession {
				t.Errorf("session %+v", s)
			}
			r := rec.last()
			wantHeaders(t, r, map[string]string{"x-api-key": testKey, "X-Incode-Hardware-Id": ""})
			if r.method != "POST" || r.path != "/omni/start" {
				t.Errorf("%s %s, want POST /omni/start", r.method, r.path)
			}
			var body map[string]string
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("start body %s: %v", r.body, err)
			}
			if len(body) != len(tt.wantBody) {
				t.Errorf("start body %v, want %v", body, tt.wantBody)
			}
			for k, v := range tt.wantBody {
				if body[k] != v {
					t.Errorf("start body %s = %q, want %q", k, body[k], v)
				}
			}

			u, err := c.OnboardingURL(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if want := srv.URL + "/flow/" + s.InterviewID + "?key="; !strings.HasPrefix(u, want) || u == want {
				t.Errorf("url %q, want %s<flow key>", u, want)
			}
			r = rec.last()
			wantHeaders(t, r, map[string]string{"x-api-key": testKey, "X-Incode-Hardware-Id": s.Token})
			if r.method != "GET" || r.path != "/0/omni/onboarding-url" || r.query != "clientId="+s.ClientID {
				t.Errorf("%s %s?%s, want GET /0/omni/onboarding-url?clientId=%s", r.method, r.path, r.query, s.ClientID)
			}
		})
	}
	if st := sim.Stats(); st.Start != 2 || st.OnboardingURL != 2 {
		t.Errorf("simulator saw %+v, want 2 starts and 2 onboarding-url calls", st)
	}
}

// wantHeaders checks the headers every call carries and the given ones; an
// empty value means the header must be absent.
func wantHeaders(t *testing.T, r recorded, want map[string]string) {
	t.Helper()
	common := map[string]string{"api-version": "1.0", "Content-Type": "application/json", "Accept": "application/json"}
	for _, m := range []map[string]string{common, want} {
		for k, v := range m {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s %s: header %s = %q, want %q", r.method, r.path, k, got, v)
			}
		}
	}
}

func TestStatus(t *testing.T) {
	sim, _ := newSim(t)
	rec := &recorder{next: sim}
	srv := newServer(t, rec)
	session := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey})
	admin := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminToken: testAdmin})
	ctx := context.Background()
	s, err := session.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, status := range []string{"", "ID_VALIDATION_FINISHED", "ONBOARDING_FINISHED", "MANUAL_REVIEW_APPROVED", "SOMETHING_NEW"} {
		want := status
		if status == "" {
			want = "UNKNOWN" // a new session
		} else if err := sim.SetStatus(s.InterviewID, status); err != nil {
			t.Fatal(err)
		}
		t.Run(want, func(t *testing.T) {
			got, err := session.Status(ctx, s.InterviewID, s.Token)
			if err != nil || got != want {
				t.Fatalf("session mode: %q, %v; want %q", got, err, want)
			}
			wantHeaders(t, rec.last(), map[string]string{"x-api-key": testKey, "X-Incode-Hardware-Id": s.Token})
			if r := rec.last(); r.path != "/0/omni/get/onboarding/status" || r.query != "" {
				t.Errorf("session mode asked %s?%s", r.path, r.query)
			}

			got, err = admin.Status(ctx, s.InterviewID, "")
			if err != nil || got != want {
				t.Fatalf("admin mode: %q, %v; want %q", got, err, want)
			}
			wantHeaders(t, rec.last(), map[string]string{"x-api-key": testKey, "X-Incode-Hardware-Id": testAdmin})
			if r := rec.last(); r.path != "/omni/get/onboarding/status" || r.query != "id="+s.InterviewID {
				t.Errorf("admin mode asked %s?%s", r.path, r.query)
			}
			calls += 2
		})
	}
	if st := sim.Stats(); st.Status != int64(calls) || st.StatusByInterview[s.InterviewID] != int64(calls) {
		t.Errorf("simulator saw %+v, want %d status calls for %s", st, calls, s.InterviewID)
	}
}

func TestScore(t *testing.T) {
	sim, srv := newSim(t)
	session := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey})
	admin := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminToken: testAdmin})
	ctx := context.Background()
	s, err := session.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, outcome := range []string{"", "OK", "WARN", "FAIL"} {
		want := outcome
		if outcome == "" {
			want = "OK" // never set
		} else if err := sim.SetScore(s.InterviewID, outcome); err != nil {
			t.Fatal(err)
		}
		t.Run(want, func(t *testing.T) {
			for mode, c := range map[string]*upstream.Client{"session": session, "admin": admin} {
				sc, err := c.Score(ctx, s.InterviewID, s.Token)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if sc.Status != want {
					t.Errorf("%s: status %q, want %q", mode, sc.Status, want)
				}
				var raw map[string]json.RawMessage
				if err := json.Unmarshal(sc.Raw, &raw); err != nil || raw["liveness"] == nil || raw["idValidation"] == nil {
					t.Errorf("%s: raw %s is not the whole score: %v", mode, sc.Raw, err)
				}
			}
		})
	}
	if st := sim.Stats(); st.Score != 8 {
		t.Errorf("simulator saw %d score calls, want 8", st.Score)
	}
}

func TestScoreShapes(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"overall null", `{"overall":null,"liveness":null}`, ""},
		{"no overall", `{"liveness":{"overall":{"status":"OK"}}}`, ""},
		{"status null", `{"overall":{"value":"1","status":null}}`, ""},
		{"unknown", `{"overall":{"value":"0","status":"UNKNOWN"}}`, "UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, fixed(200, tt.body, nil))
			c := newClient(t, upstream.Config{BaseURL: srv.URL})
			sc, err := c.Score(context.Background(), "id", "tok")
			if err != nil || sc.Status != tt.want || string(sc.Raw) != tt.body {
				t.Errorf("Score = %+v (raw %s), %v; want status %q", sc, sc.Raw, err, tt.want)
			}
		})
	}
}

// fixed answers every request with code, body and headers (name/value pairs).
func fixed(code int, body string, hdr []string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

var kinds = []error{
	upstream.ErrNotFound, upstream.ErrUnauthorized, upstream.ErrRateLimited, upstream.ErrUnavailable,
	upstream.ErrMalformed, upstream.ErrRejected, upstream.ErrNoSession,
}

// errCase is one way a call fails.
type errCase struct {
	name       string
	call       func(t *testing.T) (error, []string) // the error and the secrets it must not show
	op         string
	kind       error
	code       int
	retryAfter time.Duration // exact, unless retryRange
	retryRange bool          // RetryAfter within (retryAfter-2s, retryAfter]
	also       error         // another error errors.Is must find
	message    string        // substring of Error.Message
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	// started opens a session on a fresh simulator and returns a client for it.
	started := func(t *testing.T, cfg upstream.Config) (*simulator.Simulator, *upstream.Client, upstream.Session) {
		sim, srv := newSim(t)
		cfg.BaseURL = srv.URL
		c := newClient(t, cfg)
		s, err := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey}).Start(ctx, upstream.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sim, c, s
	}
	// faulted returns a Status call against a simulator playing f.
	faulted := func(f simulator.Faults, cfg upstream.Config) func(t *testing.T) (error, []string) {
		return func(t *testing.T) (error, []string) {
			sim, c, s := started(t, cfg)
			sim.SetFaults(f)
			_, err := c.Status(ctx, s.InterviewID, s.Token)
			return err, []string{s.Token}
		}
	}
	// against returns a call of op to a client of a server answering h.
	against := func(h http.Handler, cfg upstream.Config, op string) func(t *testing.T) (error, []string) {
		return func(t *testing.T) (error, []string) {
			cfg.BaseURL = newServer(t, h).URL
			c := newClient(t, cfg)
			s := upstream.Session{InterviewID: "0123456789abcdef01234567", Token: "session-SECRET-55", ClientID: "c"}
			var err error
			switch op {
			case "start":
				_, err = c.Start(ctx, upstream.StartOptions{})
			case "onboarding-url":
				_, err = c.OnboardingURL(ctx, s)
			case "status":
				_, err = c.Status(ctx, s.InterviewID, s.Token)
			case "score":
				_, err = c.Score(ctx, s.InterviewID, s.Token)
			}
			return err, []string{s.Token}
		}
	}
	withKey := upstream.Config{APIKey: testKey}
	asAdmin := upstream.Config{APIKey: testKey, AdminToken: testAdmin}

	tests := []errCase{
		{name: "not found, admin status", op: "status", kind: upstream.ErrNotFound, code: 404,
			call: func(t *testing.T) (error, []string) {
				_, c, _ := started(t, asAdmin)
				_, err := c.Status(ctx, "0123456789abcdef01234567", "")
				return err, nil
			}},
		{name: "not found, admin score", op: "score", kind: upstream.ErrNotFound, code: 404,
			call: func(t *testing.T) (error, []string) {
				_, c, _ := started(t, asAdmin)
				_, err := c.Score(ctx, "0123456789abcdef01234567", "")
				return err, nil
			}},
		{name: "unauthorized, bad api key", op: "start", kind: upstream.ErrUnauthorized, code: 403,
			call: func(t *testing.T) (error, []string) {
				_, c, _ := started(t, upstream.Config{APIKey: "wrong-key-SECRET-3"})
				_, err := c.Start(ctx, upstream.StartOptions{})
				return err, []string{"wrong-key-SECRET-3"}
			}},
		{name: "unauthorized, bad session token", op: "status", kind: upstream.ErrUnauthorized, code: 401,
			message: "session token",
			call: func(t *testing.T) (error, []string) {
				_, c, s := started(t, withKey)
				_, err := c.Status(ctx, s.InterviewID, "bogus-SECRET-token")
				return err, []string{"bogus-SECRET-token", s.Token}
			}},
		{name: "unauthorized, bad session token on score", op: "score", kind: upstream.ErrUnauthorized, code: 401,
			call: func(t *testing.T) (error, []string) {
				_, c, _ := started(t, withKey)
				_, err := c.Score(ctx, "x", "bogus-SECRET-token")
				return err, []string{"bogus-SECRET-token"}
			}},
		{name: "unauthorized, bad admin token", op: "status", kind: upstream.ErrUnauthorized, code: 401,
			call: func(t *testing.T) (error, []string) {
				_, c, s := started(t, upstream.Config{APIKey: testKey, AdminToken: "admin-SECRET-wrong"})
				_, err := c.Status(ctx, s.InterviewID, "")
				return err, []string{"admin-SECRET-wrong"}
			}},
		{name: "rate limited", op: "status", kind: upstream.ErrRateLimited, code: 429, retryAfter: 7 * time.Second,
			call: faulted(simulator.Faults{ErrorRate: 1, Status: 429, RetryAfterS: 7}, withKey)},
		{name: "rate limited, HTTP date", op: "status", kind: upstream.ErrRateLimited, code: 429,
			retryAfter: time.Hour, retryRange: true, message: "slow down",
			call: func(t *testing.T) (error, []string) {
				date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
				return against(fixed(429, `{"status":429,"message":"slow down"}`, []string{"Retry-After", date}),
					withKey, "status")(t)
			}},
		{name: "rate limited, date in the past", op: "start", kind: upstream.ErrRateLimited, code: 429,
			call: against(fixed(429, `{}`, []string{"Retry-After", "Mon, 02 Jan 2006 15:04:05 GMT"}), withKey, "start")},
		{name: "unavailable, 503 with Retry-After", op: "status", kind: upstream.ErrUnavailable, code: 503,
			retryAfter: 2 * time.Second, message: "injected fault",
			call: faulted(simulator.Faults{ErrorRate: 1, Status: 503, RetryAfterS: 2}, withKey)},
		{name: "unavailable, 500", op: "status", kind: upstream.ErrUnavailable, code: 500,
			call: faulted(simulator.Faults{ErrorRate: 1, Status: 500, RetryAfterS: 2}, withKey)},
		{name: "unavailable, 502 without a JSON body", op: "score", kind: upstream.ErrUnavailable, code: 502,
			call: against(fixed(502, `<html>bad gateway</html>`, nil), withKey, "score")},
		{name: "unavailable, connection refused", op: "start", kind: upstream.ErrUnavailable,
			call: func(t *testing.T) (error, []string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				c := newClient(t, upstream.Config{BaseURL: "http://" + addr, APIKey: testKey})
				_, err = c.Start(ctx, upstream.StartOptions{})
				return err, nil
			}},
		{name: "unavailable, timeout", op: "status", kind: upstream.ErrUnavailable, also: context.DeadlineExceeded,
			call: faulted(simulator.Faults{Hang: true}, upstream.Config{Timeout: 50 * time.Millisecond})},
		{name: "malformed, broken JSON", op: "status", kind: upstream.ErrMalformed, code: 200,
			call: faulted(simulator.Faults{MalformedRate: 1}, withKey)},
		{name: "malformed, oversized body", op: "start", kind: upstream.ErrMalformed, code: 200,
			call: func(t *testing.T) (error, []string) {
				_, c, _ := started(t, upstream.Config{APIKey: testKey, MaxResponseBytes: 16})
				_, err := c.Start(ctx, upstream.StartOptions{})
				return err, nil
			}},
		{name: "malformed, status missing", op: "status", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `{"status":"OK"}`, nil), withKey, "status")},
		{name: "malformed, status null", op: "status", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `{"onboardingStatus":null}`, nil), withKey, "status")},
		{name: "malformed, status not a string", op: "status", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `{"onboardingStatus":3}`, nil), withKey, "status")},
		{name: "malformed, start without token", op: "start", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `{"interviewId":"abc"}`, nil), withKey, "start")},
		{name: "malformed, start null", op: "start", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `null`, nil), withKey, "start")},
		{name: "malformed, empty url", op: "onboarding-url", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `{"url":""}`, nil), withKey, "onboarding-url")},
		{name: "malformed, relative url", op: "onboarding-url", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `{"url":"/flow/x"}`, nil), withKey, "onboarding-url")},
		{name: "malformed, javascript url", op: "onboarding-url", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `{"url":"javascript:alert(1)"}`, nil), withKey, "onboarding-url")},
		{name: "malformed, score array", op: "score", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `[]`, nil), withKey, "score")},
		{name: "malformed, score null", op: "score", kind: upstream.ErrMalformed, code: 200,
			call: against(fixed(200, `null`, nil), withKey, "score")},
		{name: "malformed, redirect not followed", op: "start", kind: upstream.ErrMalformed, code: 302,
			call: against(http.RedirectHandler("https://elsewhere.invalid/omni/start", http.StatusFound), withKey, "start")},
		{name: "rejected, missing api-version", op: "status", kind: upstream.ErrRejected, code: 400,
			message: "api-version",
			call: func(t *testing.T) (error, []string) {
				sim, srv := newSim(t)
				s, err := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey}).Start(ctx, upstream.StartOptions{})
				if err != nil {
					t.Fatal(err)
				}
				strip := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Header.Del("api-version")
					sim.ServeHTTP(w, r)
				}))
				_, err = newClient(t, upstream.Config{BaseURL: strip.URL}).Status(ctx, s.InterviewID, s.Token)
				return err, []string{s.Token}
			}},
		{name: "rejected, 422 with error field", op: "start", kind: upstream.ErrRejected, code: 422, message: "bad flow",
			call: against(fixed(422, `{"error":"bad flow"}`, nil), withKey, "start")},
		{name: "rejected, admin read without id", op: "status", kind: upstream.ErrRejected,
			call: func(t *testing.T) (error, []string) {
				_, c, _ := started(t, asAdmin)
				_, err := c.Status(ctx, "", "")
				return err, nil
			}},
		{name: "no session, status", op: "status", kind: upstream.ErrNoSession},
		{name: "no session, score", op: "score", kind: upstream.ErrNoSession},
		{name: "no session, onboarding url", op: "onboarding-url", kind: upstream.ErrNoSession},
		{name: "caller canceled", op: "status", kind: upstream.ErrUnavailable, also: context.Canceled,
			call: func(t *testing.T) (error, []string) {
				_, c, s := started(t, withKey)
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err := c.Status(cctx, s.InterviewID, s.Token)
				return err, []string{s.Token}
			}},
	}
	// The no-session cases must not reach any server.
	noSession := func(op string) func(t *testing.T) (error, []string) {
		return func(t *testing.T) (error, []string) {
			var hits atomic.Int64
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
			c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey})
			var err error
			switch op {
			case "status":
				_, err = c.Status(ctx, "0123456789abcdef01234567", "")
			case "score":
				_, err = c.Score(ctx, "0123456789abcdef01234567", "")
			case "onboarding-url":
				_, err = c.OnboardingURL(ctx, upstream.Session{InterviewID: "x", ClientID: "c"})
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("%d requests sent without a session token", n)
			}
			return err, nil
		}
	}
	for i := range tests {
		if tests[i].kind == upstream.ErrNoSession {
			tests[i].call = noSession(tests[i].op)
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, secrets := tt.call(t)
			checkError(t, tt, err, append(secrets, testKey, testAdmin))
		})
	}
}

func checkError(t *testing.T, tt errCase, err error, secrets []string) {
	t.Helper()
	var e *upstream.Error
	if !errors.As(err, &e) {
		t.Fatalf("err %v (%T), want *upstream.Error", err, err)
	}
	for _, k := range kinds {
		if got := errors.Is(err, k); got != (k == tt.kind) {
			t.Errorf("errors.Is(err, %v) = %v; err %v", k, got, err)
		}
	}
	if e.Kind != tt.kind || e.Op != tt.op || e.StatusCode != tt.code {
		t.Errorf("Kind %v, Op %q, StatusCode %d; want %v, %q, %d", e.Kind, e.Op, e.StatusCode, tt.kind, tt.op, tt.code)
	}
	if tt.retryRange {
		if e.RetryAfter > tt.retryAfter || e.RetryAfter <= tt.retryAfter-2*time.Second {
			t.Errorf("RetryAfter %s, want about %s", e.RetryAfter, tt.retryAfter)
		}
	} else if e.RetryAfter != tt.retryAfter {
		t.Errorf("RetryAfter %s, want %s", e.RetryAfter, tt.retryAfter)
	}
	if tt.also != nil && !errors.Is(err, tt.also) {
		t.Errorf("errors.Is(err, %v) is false; err %v", tt.also, err)
	}
	if !strings.Contains(e.Message, tt.message) {
		t.Errorf("Message %q lacks %q", e.Message, tt.message)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "upstream: "+tt.op+": ") {
		t.Errorf("Error() %q does not start with the op", msg)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("Error() %q shows a secret", msg)
		}
	}
}

func TestErrorText(t *testing.T) {
	e := &upstream.Error{Op: "status", StatusCode: 503, Message: "down for maintenance", Kind: upstream.ErrUnavailable}
	if got, want := e.Error(), "upstream: status: unavailable: HTTP 503: down for maintenance"; got != want {
		t.Errorf("Error() %q, want %q", got, want)
	}
}

func TestErrorMessageCleaned(t *testing.T) {
	const token = "session-SECRET-77"
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg := "token " + r.Header.Get("X-Incode-Hardware-Id") + " rejected\n" + strings.Repeat("é", 300)
		b, _ := json.Marshal(map[string]string{"message": msg})
		fixed(400, string(b), nil)(w, r)
	})
	c := newClient(t, upstream.Config{BaseURL: newServer(t, echo).URL})
	_, err := c.Status(context.Background(), "id", token)
	var e *upstream.Error
	if !errors.As(err, &e) {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), token) || !strings.Contains(e.Message, "[redacted]") {
		t.Errorf("message %q is not redacted", e.Message)
	}
	if strings.ContainsAny(e.Message, "\n\r") || len(e.Message) > 210 || !strings.HasSuffix(e.Message, "…") {
		t.Errorf("message (%d bytes) not cleaned and truncated: %q", len(e.Message), e.Message)
	}
}

func TestBaseURLPathPrefix(t *testing.T) {
	sim, _ := newSim(t)
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", sim))
	srv := newServer(t, mux)
	c := newClient(t, upstream.Config{BaseURL: srv.URL + "/api/", APIKey: testKey})
	s, err := c.Start(context.Background(), upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(context.Background(), s.InterviewID, s.Token); err != nil || st != "UNKNOWN" {
		t.Errorf("Status = %q, %v", st, err)
	}
}

func TestHealthy(t *testing.T) {
	sim, srv := newSim(t)
	c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, Timeout: 100 * time.Millisecond})
	ctx := context.Background()
	if err := c.Healthy(); err != nil {
		t.Fatalf("new client unhealthy: %v", err)
	}
	s, err := c.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	steps := []struct {
		name    string
		faults  *simulator.Faults
		ctx     context.Context
		token   string
		healthy bool
	}{
		{"answer", nil, ctx, s.Token, true},
		{"503", &simulator.Faults{ErrorRate: 1}, ctx, s.Token, false},
		{"no session: no call, no change", nil, ctx, "", false},
		{"404-like answer: upstream is up", nil, ctx, "bogus", true},
		{"timeout", &simulator.Faults{Hang: true}, ctx, s.Token, false},
		{"caller canceled: no change", nil, canceled, s.Token, false},
		{"429: upstream is up", &simulator.Faults{ErrorRate: 1, Status: 429}, ctx, s.Token, true},
		{"malformed: upstream is up", &simulator.Faults{MalformedRate: 1}, ctx, s.Token, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			sim.ClearFaults()
			if st.faults != nil {
				sim.SetFaults(*st.faults)
			}
			_, _ = c.Status(st.ctx, s.InterviewID, st.token)
			err := c.Healthy()
			if (err == nil) != st.healthy {
				t.Fatalf("Healthy() = %v, want healthy=%v", err, st.healthy)
			}
			if err != nil && (!errors.Is(err, upstream.ErrUnavailable) || !strings.Contains(err.Error(), "unavailable")) {
				t.Errorf("Healthy() = %v, want it to say unavailable", err)
			}
		})
	}
}

func TestConcurrentCalls(t *testing.T) {
	sim, srv := newSim(t)
	c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey})
	ctx := context.Background()
	s, err := c.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%4 == 0 {
				_, _ = c.Status(ctx, s.InterviewID, "bogus") // 401: keeps Healthy changing
			} else if st, err := c.Status(ctx, s.InterviewID, s.Token); err != nil || st != "UNKNOWN" {
				t.Errorf("Status = %q, %v", st, err)
			}
			_ = c.Healthy()
		})
	}
	wg.Wait()
	if got := sim.Stats().Status; got != n {
		t.Errorf("simulator saw %d status calls, want %d", got, n)
	}
}

// TestConnectionReuse proves bodies are drained and closed: sequential calls,
// failed ones included, share one connection.
func TestConnectionReuse(t *testing.T) {
	sim := simulator.New(simulator.Config{APIKey: testKey, AdminToken: testAdmin})
	srv := httptest.NewUnstartedServer(sim)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminToken: testAdmin})
	ctx := context.Background()
	s, err := c.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := c.Status(ctx, s.InterviewID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Score(ctx, "0123456789abcdef01234567", ""); !errors.Is(err, upstream.ErrNotFound) {
			t.Fatalf("Score of unknown id: %v", err)
		}
		sim.SetFaults(simulator.Faults{ErrorRate: 1})
		if _, err := c.Status(ctx, s.InterviewID, ""); !errors.Is(err, upstream.ErrUnavailable) {
			t.Fatalf("Status under faults: %v", err)
		}
		sim.ClearFaults()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("16 sequential calls opened %d connections, want 1", n)
	}
}
