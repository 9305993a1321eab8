package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey   = "sim-api-key"
	testAdmin = "sim-admin-token"
)

// harness is a Simulator behind an httptest.Server.
type harness struct {
	t   *testing.T
	sim *Simulator
	srv *httptest.Server
}

// newHarness serves a Simulator made of cfg on a loopback test server. A
// nil cfg.Addr becomes that server's address, so the control API takes
// every request, as it does on a loopback listener.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	if cfg.Addr == nil {
		cfg.Addr = srv.Listener.Addr()
	}
	sim := New(cfg)
	srv.Config.Handler = sim
	srv.Start()
	t.Cleanup(srv.Close)
	return &harness{t: t, sim: sim, srv: srv}
}

// newHarnessFor serves a Simulator the test made, with the Addr it gave.
func newHarnessFor(t *testing.T, sim *Simulator) *harness {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &harness{t: t, sim: sim, srv: srv}
}

type answer struct {
	code   int
	header http.Header
	body   []byte
}

// do sends a request; hdr holds name/value pairs. A POST says its body is
// JSON unless hdr sets a Content-Type, as the clients of the upstream API
// and the control API do.
func (h *harness) do(method, path, body string, hdr ...string) answer {
	h.t.Helper()
	if method == http.MethodPost {
		hdr = append([]string{"Content-Type", "application/json"}, hdr...)
	}
	return h.raw(method, path, body, "", hdr...)
}

type started struct {
	InterviewID     string `json:"interviewId"`
	Token           string `json:"token"`
	InterviewCode   string `json:"interviewCode"`
	FlowType        string `json:"flowType"`
	ClientID        string `json:"clientId"`
	Env             string `json:"env"`
	ExistingSession *bool  `json:"existingSession"`
}

// start opens a session with the test API key.
func (h *harness) start() started {
	h.t.Helper()
	a := h.do("POST", "/omni/start", `{"configurationId":"flow-1","countryCode":"ALL","language":"en-US"}`,
		"api-version", "1.0", "x-api-key", testKey)
	if a.code != http.StatusOK {
		h.t.Fatalf("start: HTTP %d %s", a.code, a.body)
	}
	var s started
	if err := json.Unmarshal(a.body, &s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// flowURL returns the onboarding URL of a session, as the upstream API
// answers it: the flow page, with the interview's flow key.
func (h *harness) flowURL(s started) string {
	h.t.Helper()
	a := h.sessionGet("/0/omni/onboarding-url", s.Token)
	var got struct{ URL string }
	if err := json.Unmarshal(a.body, &got); err != nil || a.code != 200 {
		h.t.Fatalf("onboarding-url: HTTP %d %s: %v", a.code, a.body, err)
	}
	return got.URL
}

// flowPath returns the path and query of a session's onboarding URL, for do.
func (h *harness) flowPath(s started) string {
	h.t.Helper()
	u, err := url.Parse(h.flowURL(s))
	if err != nil {
		h.t.Fatal(err)
	}
	return u.RequestURI()
}

func (h *harness) sessionGet(path, token string) answer {
	h.t.Helper()
	return h.do("GET", path, "", "api-version", "1.0", "X-Incode-Hardware-Id", token)
}

// wantError checks an upstream-style error answer.
func wantError(t *testing.T, a answer, code int, path string) {
	t.Helper()
	if a.code != code {
		t.Fatalf("HTTP %d, want %d; body %s", a.code, code, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e struct {
		Timestamp int64  `json:"timestamp"`
		Status    int    `json:"status"`
		Error     string `json:"error"`
		Message   string `json:"message"`
		Path      string `json:"path"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %s: %v", a.body, err)
	}
	if age := time.Since(time.UnixMilli(e.Timestamp)); age < 0 || age > time.Minute {
		t.Errorf("timestamp %d ms is not the time of the answer", e.Timestamp)
	}
	if e.Status < 1000 || e.Status > 9999 || e.Error != http.StatusText(code) || e.Message == "" || e.Path != path {
		t.Errorf("error body %+v, want a four-digit status, error %q, a message, path %q", e, http.StatusText(code), path)
	}
}

var (
	objectID = regexp.MustCompile(`^[0-9a-f]{24}$`)
	flowKey  = regexp.MustCompile(`^[0-9a-f]{32}$`) // 128 bits
)

func TestStart(t *testing.T) {
	const body = `{"configurationId":"flow-1","countryCode":"ALL","language":"en-US"}`
	tests := []struct {
		name   string
		apiKey string // Config.APIKey
		body   string
		hdr    []string
		want   int
	}{
		{"ok", testKey, body, []string{"api-version", "1.0", "x-api-key", testKey}, 200},
		{"any key when none configured", "", body, []string{"api-version", "1.0", "x-api-key", "whatever"}, 200},
		{"no api-version", testKey, body, []string{"x-api-key", testKey}, 400},
		{"wrong api-version", testKey, body, []string{"api-version", "2.0", "x-api-key", testKey}, 400},
		{"no api key", testKey, body, []string{"api-version", "1.0"}, 403},
		{"no api key, none configured", "", body, []string{"api-version", "1.0"}, 403},
		{"wrong api key", testKey, body, []string{"api-version", "1.0", "x-api-key", "nope"}, 403},
		{"bad JSON", testKey, `{"configurationId":`, []string{"api-version", "1.0", "x-api-key", testKey}, 400},
		{"not an object", testKey, `[1]`, []string{"api-version", "1.0", "x-api-key", testKey}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{APIKey: tt.apiKey})
			a := h.do("POST", "/omni/start", tt.body, tt.hdr...)
			if tt.want != 200 {
				wantError(t, a, tt.want, "/omni/start")
				return
			}
			if a.code != 200 {
				t.Fatalf("HTTP %d: %s", a.code, a.body)
			}
			var s started
			if err := json.Unmarshal(a.body, &s); err != nil {
				t.Fatal(err)
			}
			if !objectID.MatchString(s.InterviewID) {
				t.Errorf("interviewId %q is not 24 lowercase hex chars", s.InterviewID)
			}
			if len(s.Token) < 32 || s.InterviewCode == "" || s.FlowType != "flow" || s.ClientID == "" ||
				s.Env != "sim" || s.ExistingSession == nil || *s.ExistingSession {
				t.Errorf("answer %+v lacks a field", s)
			}
		})
	}
}

func TestStartGivesDistinctSessions(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	a, b := h.start(), h.start()
	if a.InterviewID == b.InterviewID || a.Token == b.Token {
		t.Fatalf("two starts share an id or token: %+v %+v", a, b)
	}
}

func TestSessionEndpoints(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	s := h.start()
	for _, path := range []string{"/0/omni/onboarding-url", "/0/omni/get/onboarding/status", "/0/omni/get/score"} {
		t.Run(path, func(t *testing.T) {
			wantError(t, h.do("GET", path, "", "api-version", "1.0"), 401, path)
			wantError(t, h.sessionGet(path, "not-a-token"), 401, path)
			wantError(t, h.do("POST", path, "{}", "api-version", "1.0", "X-Incode-Hardware-Id", s.Token), 405, path)
			wantError(t, h.do("GET", path, "", "X-Incode-Hardware-Id", s.Token), 400, path)
			if a := h.sessionGet(path, s.Token); a.code != 200 {
				t.Fatalf("HTTP %d: %s", a.code, a.body)
			}
		})
	}
}

func TestAdminEndpoints(t *testing.T) {
	withAdmin := newHarness(t, Config{APIKey: testKey, AdminToken: testAdmin})
	noAdmin := newHarness(t, Config{APIKey: testKey})
	s := withAdmin.start()
	ns := noAdmin.start()
	other := withAdmin.start()
	tests := []struct {
		name  string
		h     *harness
		id    string
		key   string
		admin string
		want  int
		score int // the answer of /omni/get/score when it differs: it takes session tokens too
	}{
		{"ok", withAdmin, s.InterviewID, testKey, testAdmin, 200, 0},
		{"admin endpoints off", noAdmin, ns.InterviewID, testKey, testAdmin, 401, 0},
		{"admin endpoints off, no token", noAdmin, ns.InterviewID, testKey, "", 401, 0},
		{"no admin token", withAdmin, s.InterviewID, testKey, "", 401, 0},
		{"wrong api key", withAdmin, s.InterviewID, "nope", testAdmin, 403, 0},
		{"no api key", withAdmin, s.InterviewID, "", testAdmin, 403, 0},
		{"wrong admin token", withAdmin, s.InterviewID, testKey, "nope", 401, 0},
		{"session token is no admin token", withAdmin, s.InterviewID, testKey, s.Token, 401, 200},
		{"another interview's session token", withAdmin, s.InterviewID, testKey, other.Token, 401, 403},
		{"session token without api key", withAdmin, s.InterviewID, "", s.Token, 403, 403},
		{"session token, missing id", withAdmin, "", testKey, s.Token, 401, 400},
		{"missing id", withAdmin, "", testKey, testAdmin, 400, 0},
		{"unknown id", withAdmin, "0123456789abcdef01234567", testKey, testAdmin, 404, 0},
	}
	for _, path := range []string{"/omni/get/onboarding/status", "/omni/get/score"} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				q := ""
				if tt.id != "" {
					q = "?id=" + tt.id
				}
				want := tt.want
				if path == "/omni/get/score" && tt.score != 0 {
					want = tt.score
				}
				a := tt.h.do("GET", path+q, "", "api-version", "1.0", "x-api-key", tt.key, "X-Incode-Hardware-Id", tt.admin)
				if want != 200 {
					wantError(t, a, want, path)
					return
				}
				if a.code != 200 || !json.Valid(a.body) {
					t.Fatalf("HTTP %d: %s", a.code, a.body)
				}
			})
		}
	}
}

func TestOnboardingURL(t *testing.T) {
	tests := []struct {
		name      string
		publicURL string
		want      func(h *harness, id string) string // the URL up to the flow key
	}{
		{"request host", "", func(h *harness, id string) string { return h.srv.URL + "/flow/" + id + "?key=" }},
		{"public URL", "https://sim.example.com/", func(_ *harness, id string) string { return "https://sim.example.com/flow/" + id + "?key=" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{APIKey: testKey, PublicURL: tt.publicURL})
			s := h.start()
			a := h.sessionGet("/0/omni/onboarding-url?clientId="+s.ClientID, s.Token)
			var got struct{ URL string }
			if err := json.Unmarshal(a.body, &got); err != nil || a.code != 200 {
				t.Fatalf("HTTP %d %s: %v", a.code, a.body, err)
			}
			want := tt.want(h, s.InterviewID)
			key, ok := strings.CutPrefix(got.URL, want)
			if !ok || !flowKey.MatchString(key) {
				t.Errorf("url %q, want %s<32 hex digits>", got.URL, want)
			}
			if again := h.flowURL(s); again != got.URL {
				t.Errorf("second onboarding URL %q, want the first, %q", again, got.URL)
			}
		})
	}
}

func readStatus(t *testing.T, h *harness, token string) string {
	t.Helper()
	a := h.sessionGet("/0/omni/get/onboarding/status", token)
	var got struct {
		OnboardingStatus string `json:"onboardingStatus"`
	}
	if err := json.Unmarshal(a.body, &got); err != nil || a.code != 200 {
		t.Fatalf("status: HTTP %d %s: %v", a.code, a.body, err)
	}
	return got.OnboardingStatus
}

// scoreStatuses returns overall.status and every "status" field in a score.
func scoreStatuses(t *testing.T, body []byte) (string, []string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("score %s: %v", body, err)
	}
	var all []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "status" {
					all = append(all, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	overall, _ := v.(map[string]any)["overall"].(map[string]any)["status"].(string)
	return overall, all
}

func TestControlAPI(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	s := h.start()
	iv := "/sim/interviews/" + s.InterviewID
	unknown := "/sim/interviews/0123456789abcdef01234567"
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		want   int
	}{
		{"status", "POST", iv + "/status", `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, 204},
		{"unknown status string", "POST", iv + "/status", `{"onboardingStatus":"SOMETHING_NEW"}`, 204},
		{"status of unknown interview", "POST", unknown + "/status", `{"onboardingStatus":"ONBOARDING_FINISHED"}`, 404},
		{"empty status", "POST", iv + "/status", `{"onboardingStatus":""}`, 400},
		{"status bad JSON", "POST", iv + "/status", `{"onboardingStatus":`, 400},
		{"status unknown field", "POST", iv + "/status", `{"status":"ONBOARDING_FINISHED"}`, 400},
		{"status oversized body", "POST", iv + "/status", `{"onboardingStatus":"` + strings.Repeat("x", maxBody) + `"}`, 400},
		{"status GET", "GET", iv + "/status", "", 405},
		{"score", "POST", iv + "/score", `{"status":"WARN"}`, 204},
		{"score bad outcome", "POST", iv + "/score", `{"status":"MAYBE"}`, 400},
		{"score lower case", "POST", iv + "/score", `{"status":"ok"}`, 400},
		{"score of unknown interview", "POST", unknown + "/score", `{"status":"OK"}`, 404},
		{"score bad JSON", "POST", iv + "/score", `nope`, 400},
		{"stats", "GET", "/sim/stats", "", 200},
		{"faults", "POST", "/sim/faults", `{"latency_ms":1}`, 204},
		{"clear faults", "DELETE", "/sim/faults", "", 204},
		{"no such route", "GET", "/sim/nope", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do(tt.method, tt.path, tt.body)
			if tt.want >= 400 {
				wantError(t, a, tt.want, tt.path)
				return
			}
			if a.code != tt.want {
				t.Fatalf("HTTP %d, want %d: %s", a.code, tt.want, a.body)
			}
		})
	}
	// The last accepted changes are what the upstream API answers.
	if got := readStatus(t, h, s.Token); got != "SOMETHING_NEW" {
		t.Errorf("status %q, want SOMETHING_NEW", got)
	}
	if overall, _ := scoreStatuses(t, h.sessionGet("/0/omni/get/score", s.Token).body); overall != "WARN" {
		t.Errorf("overall score %q, want WARN", overall)
	}
}

func TestScoreOutcomes(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, AdminToken: testAdmin})
	s := h.start()
	for _, outcome := range []string{"", OutcomeOK, OutcomeWarn, OutcomeFail} {
		want := outcome
		if want == "" {
			want = OutcomeOK // never set: the default
		} else if err := h.sim.SetScore(s.InterviewID, outcome); err != nil {
			t.Fatal(err)
		}
		t.Run("outcome "+want, func(t *testing.T) {
			answers := map[string]answer{
				"session": h.sessionGet("/0/omni/get/score", s.Token),
				"admin": h.do("GET", "/omni/get/score?id="+s.InterviewID, "",
					"api-version", "1.0", "x-api-key", testKey, "X-Incode-Hardware-Id", testAdmin),
			}
			for mode, a := range answers {
				overall, all := scoreStatuses(t, a.body)
				if overall != want {
					t.Errorf("%s: overall.status %q, want %q", mode, overall, want)
				}
				if len(all) < 7 {
					t.Errorf("%s: %d status fields, want every section's: %s", mode, len(all), a.body)
				}
				for _, st := range all {
					if st != want {
						t.Errorf("%s: a section's status is %q, want %q: %s", mode, st, want, a.body)
					}
				}
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	sim := New(Config{})
	if err := sim.SetStatus("nope", "ONBOARDING_FINISHED"); !errors.Is(err, ErrUnknownInterview) {
		t.Errorf("SetStatus unknown: %v, want ErrUnknownInterview", err)
	}
	if err := sim.SetScore("nope", OutcomeOK); !errors.Is(err, ErrUnknownInterview) {
		t.Errorf("SetScore unknown: %v, want ErrUnknownInterview", err)
	}
	iv := sim.newInterview(StartOptions{})
	if err := sim.SetStatus(iv.id, ""); err == nil || errors.Is(err, ErrUnknownInterview) {
		t.Errorf("SetStatus empty: %v, want a bad-value error", err)
	}
	if err := sim.SetScore(iv.id, "MAYBE"); err == nil || errors.Is(err, ErrUnknownInterview) {
		t.Errorf("SetScore MAYBE: %v, want a bad-value error", err)
	}
}

func TestStats(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, AdminToken: testAdmin})
	a, b := h.start(), h.start()
	h.do("POST", "/omni/start", "{}", "api-version", "1.0", "x-api-key", "wrong") // refused, still counted
	for range 3 {
		readStatus(t, h, a.Token)
	}
	h.do("GET", "/omni/get/onboarding/status?id="+b.InterviewID, "",
		"api-version", "1.0", "x-api-key", testKey, "X-Incode-Hardware-Id", testAdmin)
	h.sessionGet("/0/omni/get/onboarding/status", "not-a-token") // counted, but for no interview
	h.sessionGet("/0/omni/get/score", a.Token)
	h.sessionGet("/0/omni/onboarding-url", b.Token)
	h.sim.SetFaults(Faults{ErrorRate: 1})
	h.sessionGet("/0/omni/get/onboarding/status", b.Token) // faulted, still counted
	h.sim.ClearFaults()
	h.do("POST", "/sim/interviews/"+a.InterviewID+"/status", `{"onboardingStatus":"X"}`) // control: not counted

	want := Stats{Start: 3, OnboardingURL: 1, Status: 6, StatusReads: 6, Score: 1, CallsWithoutAPIKey: 7,
		StatusByInterview: map[string]int64{a.InterviewID: 3, b.InterviewID: 2}, MaxStatusInFlight: 1}
	ans := h.do("GET", "/sim/stats", "")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(ans.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"start", "onboarding_url", "status", "score", "finish", "status_by_interview", "max_status_in_flight",
		"calls_without_api_key", "webhooks", "webhooks_delivered", "webhook_retries", "webhooks_failed", "webhook_tokens", "flow_timeouts"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("stats JSON lacks %q: %s", k, ans.body)
		}
	}
	var got Stats
	if err := json.Unmarshal(ans.body, &got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stats over HTTP %+v, want %+v", got, want)
	}
	if st := h.sim.Stats(); fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("Stats() %+v, want %+v", st, want)
	}
	// Stats returns a copy.
	h.sim.Stats().StatusByInterview[a.InterviewID] = 100
	if n := h.sim.Stats().StatusByInterview[a.InterviewID]; n != 3 {
		t.Errorf("changing a returned map changed the Simulator: %d", n)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults string
		check  func(t *testing.T, a answer)
	}{
		{"rate limited", `{"error_rate":1,"status":429,"retry_after_s":3}`, func(t *testing.T, a answer) {
			wantError(t, a, 429, "/0/omni/get/onboarding/status")
			if ra := a.header.Get("Retry-After"); ra != "3" {
				t.Errorf("Retry-After %q, want 3", ra)
			}
		}},
		{"default 503", `{"error_rate":1}`, func(t *testing.T, a answer) {
			wantError(t, a, 503, "/0/omni/get/onboarding/status")
			if ra := a.header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After %q, want none", ra)
			}
		}},
		{"malformed", `{"malformed_rate":1}`, func(t *testing.T, a answer) {
			if a.code != 200 || json.Valid(a.body) {
				t.Errorf("HTTP %d %s, want 200 with broken JSON", a.code, a.body)
			}
		}},
		{"no error at rate 0", `{"error_rate":0,"status":500}`, func(t *testing.T, a answer) {
			if a.code != 200 {
				t.Errorf("HTTP %d, want 200", a.code)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{APIKey: testKey})
			s := h.start()
			flow := h.flowPath(s)
			if a := h.do("POST", "/sim/faults", tt.faults); a.code != 204 {
				t.Fatalf("set faults: HTTP %d %s", a.code, a.body)
			}
			tt.check(t, h.sessionGet("/0/omni/get/onboarding/status", s.Token))
			// Control routes and the flow page are never faulted.
			if a := h.do("GET", "/sim/stats", ""); a.code != 200 || !json.Valid(a.body) {
				t.Errorf("stats under faults: HTTP %d %s", a.code, a.body)
			}
			if a := h.do("GET", flow, ""); a.code != 200 {
				t.Errorf("flow page under faults: HTTP %d", a.code)
			}
			if a := h.do("DELETE", "/sim/faults", ""); a.code != 204 {
				t.Fatalf("clear faults: HTTP %d", a.code)
			}
			if got := readStatus(t, h, s.Token); got != StatusUnknown {
				t.Errorf("status after clearing faults %q, want UNKNOWN", got)
			}
		})
	}
}

func TestFaultsRefused(t *testing.T) {
	h := newHarness(t, Config{})
	for _, body := range []string{
		`{"error_rate":1.5}`, `{"error_rate":-0.1}`, `{"malformed_rate":2}`, `{"status":200}`, `{"status":99}`,
		`{"status":600}`, `{"latency_ms":-1}`, `{"latency_ms":600001}`, `{"retry_after_s":-1}`,
		`{"eror_rate":1}`, `{"hang":"yes"}`, `{`, `[]`,
	} {
		t.Run(body, func(t *testing.T) {
			wantError(t, h.do("POST", "/sim/faults", body), 400, "/sim/faults")
		})
	}
	h.sim.mu.Lock()
	f := h.sim.faults
	h.sim.mu.Unlock()
	if !reflect.DeepEqual(f, Faults{}) {
		t.Errorf("refused faults were applied: %+v", f)
	}
}

func TestLatencyFault(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	s := h.start()
	h.sim.SetFaults(Faults{LatencyMS: 60})
	begin := time.Now()
	if got := readStatus(t, h, s.Token); got != StatusUnknown {
		t.Errorf("status %q", got)
	}
	if d := time.Since(begin); d < 60*time.Millisecond {
		t.Errorf("answered after %s, want at least 60ms", d)
	}
}

func TestHangFault(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	s := h.start()
	h.sim.SetFaults(Faults{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/0/omni/get/onboarding/status", nil)
	req.Header.Set("api-version", "1.0")
	req.Header.Set("X-Incode-Hardware-Id", s.Token)
	resp, err := h.srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("hung request answered HTTP %d", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want a deadline", err)
	}
	// The server's Close (cleanup) waits for the hung handler: it must end.
}

func TestFlowPage(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, StepDelay: 700 * time.Millisecond})
	s := h.start()
	flow := h.flowPath(s)
	a := h.do("GET", flow, "")
	if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("HTTP %d %q", a.code, a.header.Get("Content-Type"))
	}
	page := string(a.body)
	for _, want := range []string{
		`id="capture-id"`, `id="confirm-id"`, `id="take-selfie"`, `id="finish"`, `id="done"`, `id="auto"`,
		`name="outcome" value="OK" checked`, `name="outcome" value="WARN"`, `name="outcome" value="FAIL"`,
		`data-interview="` + s.InterviewID + `"`, `data-key="` + flowKeyOf(t, flow) + `"`, `data-step-delay-ms="700"`, `<output id="status">UNKNOWN</output>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// Strict CSP: no inline script, style or handlers; framing from anywhere.
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script[^>]*>[^<]+</script>`),
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`javascript:`),
	} {
		if bad.MatchString(page) {
			t.Errorf("page matches %s", bad)
		}
	}
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") ||
		strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "frame-ancestors") {
		t.Errorf("CSP %q", csp)
	}
	if xfo := a.header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("X-Frame-Options %q blocks the iframe", xfo)
	}
	if !regexp.MustCompile(`id="step-1" data-step="1">`).MatchString(page) ||
		!strings.Contains(page, `id="step-2" data-step="2" hidden>`) || !strings.Contains(page, `id="done" data-step="5" tabindex="-1" hidden>`) {
		t.Errorf("a new session shows step 1 only:\n%s", page)
	}

	// The page's relative links reach the assets and its own step routes.
	pageURL, _ := url.Parse(h.srv.URL + flow)
	for ref, ctype := range map[string]string{"static/flow.js": "text/javascript", "static/flow.css": "text/css"} {
		if !strings.Contains(page, `"`+ref+`"`) {
			t.Errorf("page does not reference %s", ref)
		}
		a := h.do("GET", pageURL.ResolveReference(&url.URL{Path: ref}).Path, "")
		if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), ctype) {
			t.Errorf("%s: HTTP %d %q", ref, a.code, a.header.Get("Content-Type"))
		}
	}
	step := pageURL.ResolveReference(&url.URL{Path: s.InterviewID + "/status"}) // as flow.js posts
	if a := h.do("POST", step.Path, `{"onboardingStatus":"POST_PROCESSING_FINISHED"}`, "X-Flow-Key", flowKeyOf(t, flow)); a.code != 204 {
		t.Errorf("step route at %s: HTTP %d %s", step.Path, a.code, a.body)
	}

	// The page opens on the step that follows the status, auto-play on request.
	page = string(h.do("GET", flow+"&auto=1", "").body)
	if !strings.Contains(page, `id="step-3" data-step="3">`) || !strings.Contains(page, `id="step-1" data-step="1" hidden>`) {
		t.Errorf("after POST_PROCESSING_FINISHED the page does not show step 3:\n%s", page)
	}
	if !strings.Contains(page, `id="auto" checked`) {
		t.Errorf("?auto=1 does not check #auto")
	}
	if err := h.sim.SetStatus(s.InterviewID, StatusOnboardingFinished); err != nil {
		t.Fatal(err)
	}
	page = string(h.do("GET", flow, "").body)
	if !strings.Contains(page, `id="done" data-step="5" tabindex="-1">`) {
		t.Errorf("a finished session does not show #done")
	}
}

func TestFlowPageNotFound(t *testing.T) {
	h := newHarness(t, Config{})
	for _, path := range []string{"/flow/0123456789abcdef01234567", "/flow/static/", "/flow/static/nope.js", "/flow/static/../flow.html"} {
		t.Run(path, func(t *testing.T) {
			a := h.do("GET", path, "")
			if a.code != 404 {
				t.Errorf("HTTP %d, want 404", a.code)
			}
		})
	}
	a := h.do("GET", "/flow/0123456789abcdef01234567", "")
	if !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(string(a.body), "Session not found") {
		t.Errorf("unknown session page: %q %s", a.header.Get("Content-Type"), a.body)
	}
}

func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	// session starts a session and reads its status once, from any goroutine.
	session := func() (string, error) {
		req, _ := http.NewRequest("POST", h.srv.URL+"/omni/start", strings.NewReader(`{"configurationId":"f"}`))
		req.Header.Set("api-version", "1.0")
		req.Header.Set("x-api-key", testKey)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var s started
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			return "", err
		}
		if err := h.sim.SetStatus(s.InterviewID, StatusOnboardingFinished); err != nil {
			return "", err
		}
		req, _ = http.NewRequest("GET", h.srv.URL+"/0/omni/get/onboarding/status", nil)
		req.Header.Set("api-version", "1.0")
		req.Header.Set("X-Incode-Hardware-Id", s.Token)
		resp, err = h.srv.Client().Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var st struct{ OnboardingStatus string }
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return "", err
		}
		if st.OnboardingStatus != StatusOnboardingFinished {
			return "", fmt.Errorf("status %q", st.OnboardingStatus)
		}
		_ = h.sim.Stats()
		return s.InterviewID, nil
	}
	const n = 16
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for range n {
		wg.Go(func() {
			id, err := session()
			if err != nil {
				t.Error(err)
			}
			ids <- id
		})
	}
	wg.Wait()
	close(ids)
	st := h.sim.Stats()
	if st.Start != n || st.Status != n || len(st.StatusByInterview) != n {
		t.Errorf("stats %+v, want %d starts and status calls over %d interviews", st, n, n)
	}
	for id := range ids {
		if st.StatusByInterview[id] != 1 {
			t.Errorf("interview %q: %d status calls, want 1", id, st.StatusByInterview[id])
		}
	}
}

// TestFlowScript plays web/static/flow.js in Node against the simulator: by
// clicks and by auto-advance, from the first step and from the middle. The
// simulator knows no loopback address, so its control API is off: the page
// needs only the flow key of its onboarding URL.
func TestFlowScript(t *testing.T) {
	node := testenv.Program(t, "node", "flow.js run in Node (web/static/flow.js)")
	tests := []struct {
		name    string
		mode    string
		outcome string
		order   string
		from    string   // status before the page opens
		want    []string // the statuses the page shows, one per step
		set     []string // every status the page sets, in order
	}{
		{"click, OK", "click", "OK", "", "", Flow[1:], Flow[1:]},
		{"click, FAIL", "click", "FAIL", "", "", Flow[1:], Flow[1:]},
		{"auto, WARN", "auto", "WARN", "", "", Flow[1:], Flow[1:]},
		{"auto from selfie", "auto", "OK", "", StatusPostProcessingFinished, Flow[3:], Flow[3:]},
		{"Incode's order, click", "click", "OK", OrderIncode, "",
			[]string{StatusIDValidationFinishedSecondID, StatusGovernmentValidationFinished, StatusPostProcessingFinished, StatusOnboardingFinished},
			Path(OrderIncode)[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			announced := make(chan string, 16)
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var c webhookCall
				json.NewDecoder(r.Body).Decode(&c)
				announced <- c.OnboardingStatus
				w.WriteHeader(http.StatusNoContent)
			}))
			defer receiver.Close()
			sim := New(Config{APIKey: testKey, StepDelay: 5 * time.Millisecond, Order: tt.order})
			h := newHarnessFor(t, sim)
			s := h.start()
			if tt.from != "" {
				if err := h.sim.SetStatus(s.InterviewID, tt.from); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			order, _ := json.Marshal(orderSteps[sim.order])
			sim.webhooks = newWebhooks(Config{WebhookURL: receiver.URL}, sim) // announces what the page sets from now on
			defer sim.webhooks.close()
			cmd := exec.CommandContext(ctx, node, "testdata/flow_harness.js", h.flowURL(s),
				fmt.Sprint(stepOf(readStatus(t, h, s.Token), orderSteps[sim.order])), "5", tt.mode, tt.outcome, string(order))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("flow.js: %v\n%s%s", err, out, stderr.String())
			}
			if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("page showed %v, want %v", got, tt.want)
			}
			if got := readStatus(t, h, s.Token); got != StatusOnboardingFinished {
				t.Errorf("upstream status %q, want ONBOARDING_FINISHED", got)
			}
			for i, want := range tt.set {
				select {
				case got := <-announced:
					if got != want {
						t.Fatalf("status %d set by the page: %s, want %s (all: %v)", i, got, want, tt.set)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("status %d (%s) never set", i, want)
				}
			}
			if overall, _ := scoreStatuses(t, h.sessionGet("/0/omni/get/score", s.Token).body); overall != tt.outcome {
				t.Errorf("score %q, want %q", overall, tt.outcome)
			}
		})
	}
}

// TestFaultsForSomeInterviews: faults limited to some interviews leave the
// others alone, and ParseFaults reads the same JSON as the control API.
func TestFaultsForSomeInterviews(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	a, b := h.start(), h.start()
	f, err := ParseFaults(`{"error_rate":1,"status":503,"interviews":["` + a.InterviewID + `"]}`)
	if err != nil {
		t.Fatal(err)
	}
	h.sim.SetFaults(f)
	for _, c := range []struct {
		s    started
		want int
	}{{a, 503}, {b, 200}} {
		resp := h.do("GET", "/0/omni/get/onboarding/status", "", "api-version", "1.0", "X-Incode-Hardware-Id", c.s.Token)
		if resp.code != c.want {
			t.Errorf("status of %s: %d, want %d", c.s.InterviewID, resp.code, c.want)
		}
	}
	for _, bad := range []string{`{"interviews":"x"}`, `{"error_rate":2}`, `{"nope":1}`, ``} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
}
