package simulator

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const testControlToken = "control-token-0123456789"

// exposed is the address of a Simulator that listens beyond loopback, as
// in the Docker image. The test server still listens on 127.0.0.1: a
// request that arrives over loopback must not be trusted for that.
var exposed = &net.TCPAddr{IP: net.IPv4zero, Port: 8090}

// flowKeyOf returns the flow key in an onboarding URL or its path.
func flowKeyOf(t *testing.T, flowURL string) string {
	t.Helper()
	u, err := url.Parse(flowURL)
	if err != nil || u.Query().Get("key") == "" {
		t.Fatalf("onboarding URL %q has no key: %v", flowURL, err)
	}
	return u.Query().Get("key")
}

// controlCall is one request of every route of the control API, with the
// answer it gets once it is let in.
type controlCall struct {
	method, path, body string
	want               int
}

// controlCalls covers every /sim/ route, about the interview id.
func controlCalls(id string) []controlCall {
	iv := "/sim/interviews/" + id
	return []controlCall{
		{"GET", iv, "", 200},
		{"DELETE", iv, "", 204},
		{"POST", iv + "/expire", "", 204},
		{"POST", iv + "/status", `{"onboardingStatus":"ONBOARDING_FINISHED"}`, 204},
		{"POST", iv + "/score", `{"status":"FAIL"}`, 204},
		{"GET", "/sim/stats", "", 200},
		{"POST", "/sim/faults", `{"error_rate":1}`, 204},
		{"DELETE", "/sim/faults", "", 204},
		{"PUT", "/sim/stats", "", 405},
		{"GET", "/sim/nope", "", 404},
	}
}

// TestControlAPIBeyondLoopback: a Simulator that listens beyond loopback
// refuses every control route with 403 JSON unless the request carries
// the control token, and with no token configured refuses them all, saying
// how to turn the API on. Refused calls change nothing.
func TestControlAPIBeyondLoopback(t *testing.T) {
	tests := []struct {
		name    string
		token   string   // Config.ControlToken
		hdr     []string // what the request sends
		allowed bool
		message string // in the refusal
	}{
		{"off without a token", "", nil, false, "-sim-control-token"},
		{"off, a token sent anyway", "", []string{"Authorization", "Bearer " + testControlToken}, false, "PUSHGATE_SIM_CONTROL_TOKEN"},
		{"no token sent", testControlToken, nil, false, "invalid or missing control token"},
		{"wrong token", testControlToken, []string{"Authorization", "Bearer " + testControlToken + "x"}, false, "invalid or missing control token"},
		{"token prefix", testControlToken, []string{"Authorization", "Bearer " + testControlToken[:8]}, false, "invalid or missing control token"},
		{"not a bearer", testControlToken, []string{"Authorization", "Basic " + testControlToken}, false, "invalid or missing control token"},
		{"token", testControlToken, []string{"Authorization", "Bearer " + testControlToken}, true, ""},
		{"token, scheme in lower case", testControlToken, []string{"Authorization", "bearer " + testControlToken}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{APIKey: testKey, Addr: exposed, ControlToken: tt.token})
			for _, c := range controlCalls(h.start().InterviewID) {
				a := h.do(c.method, c.path, c.body, tt.hdr...)
				if tt.allowed {
					if a.code != c.want {
						t.Errorf("%s %s: HTTP %d, want %d: %s", c.method, c.path, a.code, c.want, a.body)
					}
					continue
				}
				wantError(t, a, http.StatusForbidden, c.path)
				if !strings.Contains(string(a.body), tt.message) {
					t.Errorf("%s %s: refusal %s does not say %q", c.method, c.path, a.body, tt.message)
				}
			}
			if tt.allowed {
				return
			}
			s := h.start()
			if got := readStatus(t, h, s.Token); got != StatusUnknown {
				t.Errorf("a refused control call changed a session: status %q", got)
			}
			if st := h.sim.Stats(); st.Start != 2 {
				t.Errorf("stats %+v: refused calls reached the simulator", st)
			}
		})
	}
}

// TestControlAPIOnLoopback: on a loopback listener the control API takes
// every request, with a control token configured or not.
func TestControlAPIOnLoopback(t *testing.T) {
	for _, token := range []string{"", testControlToken} {
		t.Run("token "+token, func(t *testing.T) {
			h := newHarness(t, Config{APIKey: testKey, ControlToken: token})
			for _, c := range controlCalls(h.start().InterviewID) {
				if a := h.do(c.method, c.path, c.body); a.code != c.want {
					t.Errorf("%s %s: HTTP %d, want %d: %s", c.method, c.path, a.code, c.want, a.body)
				}
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8090}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 3, 2, 1), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8090}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 8090}, true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8090}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8090}, false},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 8090}, false},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 8090, Zone: "eth0"}, false},
		{&net.UnixAddr{Name: "/tmp/sim.sock", Net: "unix"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.addr); got != tt.want {
			t.Errorf("isLoopback(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// TestNilAddrIsBeyondLoopback: a Simulator that is not told where it
// listens keeps its control API off over HTTP; its Go methods still work.
func TestNilAddrIsBeyondLoopback(t *testing.T) {
	sim := New(Config{APIKey: testKey})
	h := newHarnessFor(t, sim)
	s := h.start()
	wantError(t, h.do("GET", "/sim/stats", ""), http.StatusForbidden, "/sim/stats")
	if err := sim.SetStatus(s.InterviewID, StatusOnboardingFinished); err != nil {
		t.Fatal(err)
	}
	if got := readStatus(t, h, s.Token); got != StatusOnboardingFinished {
		t.Errorf("status %q after SetStatus", got)
	}
}

// TestFlowKey: beyond loopback, with the control API off, the flow page and
// its step routes work with the key of the interview's onboarding URL, and
// refuse a missing key and another interview's key. The step routes take
// only the statuses the flow page sets and the outcomes it offers.
func TestFlowKey(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, Addr: exposed})
	a, b := h.start(), h.start()
	aKey, bKey := flowKeyOf(t, h.flowURL(a)), flowKeyOf(t, h.flowURL(b))
	if aKey == bKey {
		t.Fatalf("two interviews share the flow key %q", aKey)
	}
	page := "/flow/" + a.InterviewID
	pages := []struct {
		name string
		path string
		want int
		text string
	}{
		{"own key", page + "?key=" + aKey, 200, `data-key="` + aKey + `"`},
		{"no key", page, 403, "Link not valid"},
		{"empty key", page + "?key=", 403, "Link not valid"},
		{"another interview's key", page + "?key=" + bKey, 403, "Link not valid"},
		{"key in upper case", page + "?key=" + strings.ToUpper(aKey), 403, "Link not valid"},
		{"unknown interview", "/flow/0123456789abcdef01234567?key=" + aKey, 404, "Session not found"},
	}
	for _, p := range pages {
		t.Run("page/"+p.name, func(t *testing.T) {
			ans := h.do("GET", p.path, "")
			if ans.code != p.want || !strings.Contains(string(ans.body), p.text) {
				t.Errorf("GET %s: HTTP %d, want %d with %q:\n%s", p.path, ans.code, p.want, p.text, ans.body)
			}
			if p.want != 200 && strings.Contains(string(ans.body), aKey) {
				t.Errorf("GET %s: a refusal shows the key", p.path)
			}
		})
	}

	status, score := page+"/status", page+"/score"
	steps := []struct {
		name string
		path string
		body string // POSTed; empty: a GET
		hdr  []string
		want int
	}{
		{"status, no key", status, `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, nil, 403},
		{"status, another interview's key", status, `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, []string{"X-Flow-Key", bKey}, 403},
		{"status, key in the query only", status + "?key=" + aKey, `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, nil, 403},
		{"status, key as a control token", status, `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, []string{"Authorization", "Bearer " + aKey}, 403},
		{"status the page never sets", status, `{"onboardingStatus":"MANUAL_REVIEW_APPROVED"}`, []string{"X-Flow-Key", aKey}, 400},
		{"UNKNOWN", status, `{"onboardingStatus":"UNKNOWN"}`, []string{"X-Flow-Key", aKey}, 400},
		{"status with a control field", status, `{"onboardingStatus":"ID_VALIDATION_FINISHED","deleted":true}`, []string{"X-Flow-Key", aKey}, 400},
		{"status GET", status, "", []string{"X-Flow-Key", aKey}, 405},
		{"status of an unknown interview", "/flow/0123456789abcdef01234567/status", `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, []string{"X-Flow-Key", aKey}, 404},
		{"score, no key", score, `{"status":"FAIL"}`, nil, 403},
		{"score, another interview's key", score, `{"status":"FAIL"}`, []string{"X-Flow-Key", bKey}, 403},
		{"score outcome the page does not offer", score, `{"status":"MAYBE"}`, []string{"X-Flow-Key", aKey}, 400},
		{"status", status, `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, []string{"X-Flow-Key", aKey}, 204},
		{"score", score, `{"status":"WARN"}`, []string{"X-Flow-Key", aKey}, 204},
	}
	for _, st := range steps {
		t.Run("step/"+st.name, func(t *testing.T) {
			method := "POST"
			if st.body == "" {
				method = "GET"
			}
			ans := h.do(method, st.path, st.body, st.hdr...)
			if st.want == 204 {
				if ans.code != 204 {
					t.Fatalf("HTTP %d, want 204: %s", ans.code, ans.body)
				}
				return
			}
			wantError(t, ans, st.want, strings.Split(st.path, "?")[0])
		})
	}
	if got := readStatus(t, h, a.Token); got != StatusIDValidationFinished {
		t.Errorf("status %q, want only the keyed step's ID_VALIDATION_FINISHED", got)
	}
	if overall, _ := scoreStatuses(t, h.sessionGet("/0/omni/get/score", a.Token).body); overall != OutcomeWarn {
		t.Errorf("score %q, want only the keyed step's WARN", overall)
	}
	if got := readStatus(t, h, b.Token); got != StatusUnknown {
		t.Errorf("the other interview's status %q, want UNKNOWN", got)
	}
	// The control API stays off: the flow key opens the flow routes only.
	wantError(t, h.do("POST", "/sim/interviews/"+a.InterviewID+"/status", `{"onboardingStatus":"ONBOARDING_FINISHED"}`, "X-Flow-Key", aKey),
		http.StatusForbidden, "/sim/interviews/"+a.InterviewID+"/status")

	// A deleted interview is gone for its key holder too.
	if err := h.sim.Delete(a.InterviewID); err != nil {
		t.Fatal(err)
	}
	if ans := h.do("GET", page+"?key="+aKey, ""); ans.code != 404 || !strings.Contains(string(ans.body), "Session not found") {
		t.Errorf("page of a deleted interview: HTTP %d", ans.code)
	}
	wantError(t, h.do("POST", status, `{"onboardingStatus":"ONBOARDING_FINISHED"}`, "X-Flow-Key", aKey), 404, status)
}

// TestFlowKeyStepsOfEachOrder: the step routes take every status of the
// configured order, and only those.
func TestFlowKeyStepsOfEachOrder(t *testing.T) {
	for _, order := range []string{OrderSteps, OrderIncode} {
		t.Run(order, func(t *testing.T) {
			h := newHarness(t, Config{APIKey: testKey, Addr: exposed, Order: order})
			s := h.start()
			key := flowKeyOf(t, h.flowURL(s))
			set := func(status string) int {
				body, _ := json.Marshal(statusBody{status})
				return h.do("POST", "/flow/"+s.InterviewID+"/status", string(body), "X-Flow-Key", key).code
			}
			for _, status := range Path(order)[1:] {
				if code := set(status); code != 204 {
					t.Errorf("%s: HTTP %d, want 204", status, code)
				}
			}
			other := map[string]string{OrderSteps: StatusGovernmentValidationFinished, OrderIncode: "SOMETHING_NEW"}[order]
			if code := set(other); code != 400 {
				t.Errorf("%s, not of the order: HTTP %d, want 400", other, code)
			}
		})
	}
}
