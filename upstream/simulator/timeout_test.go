package simulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hookLog is a webhook receiver that answers 204 and keeps every call.
type hookLog struct {
	srv   *httptest.Server
	calls chan webhookCall
}

func newHookLog(t *testing.T) *hookLog {
	l := &hookLog{calls: make(chan webhookCall, 64)}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c webhookCall
		json.NewDecoder(r.Body).Decode(&c)
		l.calls <- c
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

// next returns the next call, waiting generously for it.
func (l *hookLog) next(t *testing.T) webhookCall {
	t.Helper()
	select {
	case c := <-l.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook call within 10s")
		return webhookCall{}
	}
}

// TestFlowTimeout: a session whose flow has not ended by Config.FlowTimeout
// gets EXPIRED, announced by webhook; its token still reads the status; its
// flow page says it expired and refuses steps.
func TestFlowTimeout(t *testing.T) {
	hooks := newHookLog(t)
	sim := New(Config{APIKey: testKey, AdminToken: testAdmin, WebhookURL: hooks.srv.URL, FlowTimeout: 50 * time.Millisecond})
	defer sim.Close()
	h := newHarnessFor(t, sim)
	s := h.start()
	flow := h.flowPath(s)
	if c := hooks.next(t); c.InterviewID != s.InterviewID || c.OnboardingStatus != StatusExpired {
		t.Fatalf("webhook %+v, want EXPIRED", c)
	}
	if got := readStatus(t, h, s.Token); got != StatusExpired {
		t.Fatalf("status read with the session token: %q, want EXPIRED", got)
	}
	a := h.do("GET", "/omni/get/onboarding/status?id="+s.InterviewID, "", "api-version", "1.0", "x-api-key", testKey, "X-Incode-Hardware-Id", testAdmin)
	if a.code != 200 || !strings.Contains(string(a.body), `"onboardingStatus":"EXPIRED"`) {
		t.Fatalf("admin status read: %d %s", a.code, a.body)
	}
	if st := sim.Stats(); st.FlowTimeouts != 1 {
		t.Fatalf("%d flow timeouts counted, want 1", st.FlowTimeouts)
	}
	wantExpiredFlow(t, h, s, flow)
}

// wantExpiredFlow checks that the flow page of an expired session says so
// and that its steps are refused with 410.
func wantExpiredFlow(t *testing.T, h *harness, s started, flow string) {
	t.Helper()
	a := h.do("GET", flow, "")
	if a.code != http.StatusGone || !strings.Contains(string(a.body), "Session expired") {
		t.Fatalf("flow page of an expired session: %d %s", a.code, a.body)
	}
	key := flowKeyOf(t, flow)
	for path, body := range map[string]string{
		"/flow/" + s.InterviewID + "/status": `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`,
		"/flow/" + s.InterviewID + "/score":  `{"status":"OK"}`,
	} {
		a := h.do("POST", path, body, "X-Flow-Key", key)
		wantError(t, a, http.StatusGone, path)
		if !strings.Contains(string(a.body), "expired") {
			t.Errorf("%s: %s does not say the session expired", path, a.body)
		}
	}
	if got := readStatus(t, h, s.Token); got != StatusExpired {
		t.Fatalf("status after refused steps: %q, want EXPIRED", got)
	}
}

// TestFlowTimeoutSparesEndedFlows: the flow timeout set through the
// control API expires a session in the middle of its flow, leaves a
// finished or reviewed one alone, and a session with none never expires.
func TestFlowTimeoutSparesEndedFlows(t *testing.T) {
	hooks := newHookLog(t)
	h := newHarness(t, Config{APIKey: testKey, WebhookURL: hooks.srv.URL, FlowTimeout: time.Hour})
	sim := h.sim
	defer sim.Close()
	finished, reviewed, untimed, open := h.start(), h.start(), h.start(), h.start()
	for _, c := range []struct {
		s      started
		status string
	}{{finished, StatusOnboardingFinished}, {reviewed, StatusManualReviewRejected}, {open, StatusFaceValidationFinished}} {
		if err := sim.SetStatus(c.s.InterviewID, c.status); err != nil {
			t.Fatal(err)
		}
		if got := hooks.next(t); got.OnboardingStatus != c.status {
			t.Fatalf("webhook %+v, want %s", got, c.status)
		}
	}
	// Deadlines already past fire at once; the open session's comes last.
	for _, c := range []struct {
		s  started
		ms int
	}{{finished, 1}, {reviewed, 1}, {untimed, 0}, {open, 1}} {
		a := h.do("POST", "/sim/interviews/"+c.s.InterviewID+"/timeout", `{"timeout_ms":`+strconv.Itoa(c.ms)+`}`)
		if a.code != http.StatusNoContent {
			t.Fatalf("timeout: %d %s", a.code, a.body)
		}
	}
	if c := hooks.next(t); c.InterviewID != open.InterviewID || c.OnboardingStatus != StatusExpired {
		t.Fatalf("webhook %+v, want the open session's EXPIRED", c)
	}
	for _, c := range []struct {
		s    started
		want string
	}{{finished, StatusOnboardingFinished}, {reviewed, StatusManualReviewRejected}, {untimed, StatusUnknown}, {open, StatusExpired}} {
		if got := readStatus(t, h, c.s.Token); got != c.want {
			t.Errorf("session %s: %q, want %q", c.s.InterviewID, got, c.want)
		}
	}
	select {
	case c := <-hooks.calls:
		t.Fatalf("unexpected webhook %+v", c)
	default:
	}
}

// TestExpiredByControl: EXPIRED set through the control API is a status
// change like any other: announced, read, and the flow page ends.
func TestExpiredByControl(t *testing.T) {
	hooks := newHookLog(t)
	h := newHarness(t, Config{APIKey: testKey, WebhookURL: hooks.srv.URL})
	sim := h.sim
	defer sim.Close()
	s := h.start()
	flow := h.flowPath(s)
	if a := h.do("POST", "/sim/interviews/"+s.InterviewID+"/status", `{"onboardingStatus":"EXPIRED"}`); a.code != http.StatusNoContent {
		t.Fatalf("status: %d %s", a.code, a.body)
	}
	if c := hooks.next(t); c.InterviewID != s.InterviewID || c.OnboardingStatus != StatusExpired {
		t.Fatalf("webhook %+v, want EXPIRED", c)
	}
	wantExpiredFlow(t, h, s, flow)
}

// TestTimeoutControlRoute: what POST /sim/interviews/{id}/timeout refuses.
func TestTimeoutControlRoute(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	defer h.sim.Close()
	s := h.start()
	path := "/sim/interviews/" + s.InterviewID + "/timeout"
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"ok", "POST", path, `{"timeout_ms":3600000}`, 204},
		{"off", "POST", path, `{"timeout_ms":0}`, 204},
		{"negative", "POST", path, `{"timeout_ms":-1}`, 400},
		{"over a year", "POST", path, `{"timeout_ms":31536000001}`, 400},
		{"missing", "POST", path, `{}`, 400},
		{"unknown field", "POST", path, `{"timeout":"1s"}`, 400},
		{"not a number", "POST", path, `{"timeout_ms":"1s"}`, 400},
		{"unknown interview", "POST", "/sim/interviews/0123456789abcdef01234567/timeout", `{"timeout_ms":1}`, 404},
		{"GET", "GET", path, "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do(tt.method, tt.path, tt.body)
			if tt.want >= 400 {
				wantError(t, a, tt.want, tt.path)
			} else if a.code != tt.want {
				t.Fatalf("HTTP %d, want %d: %s", a.code, tt.want, a.body)
			}
		})
	}
	if got := readStatus(t, h, s.Token); got != StatusUnknown {
		t.Fatalf("status %q after a timeout turned off, want UNKNOWN", got)
	}
}

// TestCloseStopsFlowTimeouts: Close stops the timers armed, and none is
// armed after it, whatever the control API asks; no session expires.
func TestCloseStopsFlowTimeouts(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, FlowTimeout: time.Hour})
	s := h.start()
	if iv, _ := h.sim.lookup(s.InterviewID); iv.timer == nil {
		t.Fatal("no timer armed at start")
	}
	h.sim.Close()
	later := h.start()
	for _, s := range []started{s, later} {
		if a := h.do("POST", "/sim/interviews/"+s.InterviewID+"/timeout", `{"timeout_ms":1}`); a.code != http.StatusNoContent {
			t.Fatalf("timeout: %d %s", a.code, a.body)
		}
		if iv, _ := h.sim.lookup(s.InterviewID); iv.timer != nil {
			t.Errorf("a timer is armed after Close")
		}
	}
	time.Sleep(50 * time.Millisecond) // what a timer armed would have fired by
	for _, s := range []started{s, later} {
		if got := readStatus(t, h, s.Token); got != StatusUnknown {
			t.Errorf("status %q after Close, want UNKNOWN", got)
		}
	}
}
