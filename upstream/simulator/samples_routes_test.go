package simulator

import (
	"encoding/json"
	"net/http"
	"testing"
)

// The routes Incode's sample backends call besides pushgate's: the
// onboarding URL under /omni with the API key, scores read with a session
// token, finish-status, and a start that resumes a session.

// TestOnboardingURLWithAPIKey: GET /omni/onboarding-url takes the API key
// and the session token, and answers the URL /0/omni/onboarding-url does,
// whatever clientId and redirectionUrl say.
func TestOnboardingURLWithAPIKey(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	s := h.start()
	want := h.flowURL(s)
	const path = "/omni/onboarding-url"
	tests := []struct {
		name, query, key, token string
		want                    int
	}{
		{"key and token", "", testKey, s.Token, 200},
		{"clientId", "?clientId=" + s.ClientID, testKey, s.Token, 200},
		{"another clientId and a redirectionUrl", "?clientId=acme&redirectionUrl=$https://example.com/", testKey, s.Token, 200},
		{"no api key", "?clientId=sim", "", s.Token, 403},
		{"wrong api key", "", "nope", s.Token, 403},
		{"no token", "", testKey, "", 401},
		{"unknown token", "", testKey, "nope", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do("GET", path+tt.query, "", "api-version", "1.0", "x-api-key", tt.key, "X-Incode-Hardware-Id", tt.token)
			if tt.want != 200 {
				wantError(t, a, tt.want, path)
				return
			}
			var got struct{ URL string }
			if a.code != 200 || json.Unmarshal(a.body, &got) != nil || got.URL != want {
				t.Fatalf("HTTP %d %s, want the url %s", a.code, a.body, want)
			}
		})
	}
	if n := h.sim.Stats().OnboardingURL; n != int64(len(tests))+1 {
		t.Errorf("%d onboarding-url calls counted, want %d", n, len(tests)+1)
	}
}

// TestFinishStatus: GET /omni/finish-status answers {redirectionUrl,
// action}, sets ONBOARDING_FINISHED with its webhook, and never moves an
// ended flow back; an expired flow cannot be finished.
func TestFinishStatus(t *testing.T) {
	hooks := newHookLog(t)
	h := newHarness(t, Config{APIKey: testKey, WebhookURL: hooks.srv.URL})
	defer h.sim.Close()
	startWith := func(body string) started {
		a := h.do("POST", "/omni/start", body, "api-version", "1.0", "x-api-key", testKey)
		var s started
		if a.code != 200 || json.Unmarshal(a.body, &s) != nil {
			t.Fatalf("start: %d %s", a.code, a.body)
		}
		return s
	}
	finish := func(s started, key string) answer {
		return h.do("GET", "/omni/finish-status", "", "api-version", "1.0", "x-api-key", key, "X-Incode-Hardware-Id", s.Token)
	}
	const path = "/omni/finish-status"

	plain := startWith(`{"configurationId":"f1"}`)
	redirected := startWith(`{"configurationId":"f2","redirectionUrl":"https://app.example/done?x=1"}`)
	failed, reviewed, expired := h.start(), h.start(), h.start()
	if err := h.sim.SetScore(failed.InterviewID, OutcomeFail); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s      started
		status string
	}{{reviewed, StatusManualReviewApproved}, {expired, StatusExpired}} {
		if err := h.sim.SetStatus(c.s.InterviewID, c.status); err != nil {
			t.Fatal(err)
		}
		hooks.next(t)
	}
	tests := []struct {
		name      string
		s         started
		key       string
		want      int
		answer    finishAnswer
		status    string // the status after it
		announced bool   // a webhook announces ONBOARDING_FINISHED
		flowID    string // the webhook's flowId
	}{
		{"finishes", plain, testKey, 200, finishAnswer{"", "approved"}, StatusOnboardingFinished, true, "f1"},
		{"again: same answer, no new change", plain, testKey, 200, finishAnswer{"", "approved"}, StatusOnboardingFinished, false, ""},
		{"the start's redirectionUrl", redirected, testKey, 200, finishAnswer{"https://app.example/done?x=1", "approved"}, StatusOnboardingFinished, true, "f2"},
		{"score FAIL", failed, testKey, 200, finishAnswer{"", "none"}, StatusOnboardingFinished, true, "flow-1"},
		{"reviewed stays reviewed", reviewed, testKey, 200, finishAnswer{"", "approved"}, StatusManualReviewApproved, false, ""},
		{"expired", expired, testKey, 410, finishAnswer{}, StatusExpired, false, ""},
		{"no api key", h.start(), "", 403, finishAnswer{}, StatusUnknown, false, ""},
		{"no session", started{Token: "nope"}, testKey, 401, finishAnswer{}, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := finish(tt.s, tt.key)
			if tt.want != 200 {
				wantError(t, a, tt.want, path)
			} else {
				var got map[string]any
				if a.code != 200 || json.Unmarshal(a.body, &got) != nil {
					t.Fatalf("HTTP %d %s", a.code, a.body)
				}
				want := map[string]any{"redirectionUrl": tt.answer.RedirectionURL, "action": tt.answer.Action}
				if len(got) != 2 || got["redirectionUrl"] != want["redirectionUrl"] || got["action"] != want["action"] {
					t.Fatalf("answer %s, want %v", a.body, want)
				}
			}
			if tt.status != "" {
				if got := readStatus(t, h, tt.s.Token); got != tt.status {
					t.Fatalf("status %q, want %q", got, tt.status)
				}
			}
			if tt.announced {
				if c := hooks.next(t); c.InterviewID != tt.s.InterviewID || c.OnboardingStatus != StatusOnboardingFinished || c.FlowID != tt.flowID {
					t.Fatalf("webhook %+v, want ONBOARDING_FINISHED of %s with flowId %s", c, tt.s.InterviewID, tt.flowID)
				}
			}
		})
	}
	if n := h.sim.Stats().Finish; n != int64(len(tests)) {
		t.Errorf("%d finish-status calls counted, want %d", n, len(tests))
	}
	select {
	case c := <-hooks.calls:
		t.Fatalf("unexpected webhook %+v", c)
	default:
	}
}

// TestStartResumes: POST /omni/start with an interviewId answers that
// session again (same id, token and code, existingSession true), keeps
// what its first start asked for, and refuses an unknown or deleted one.
func TestStartResumes(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	first := h.start()
	if *first.ExistingSession {
		t.Fatal("a new session says it existed")
	}
	gone := h.start()
	if err := h.sim.Delete(gone.InterviewID); err != nil {
		t.Fatal(err)
	}
	const path = "/omni/start"
	tests := []struct {
		name, body, key string
		want            int
	}{
		{"resume", `{"interviewId":"` + first.InterviewID + `"}`, testKey, 200},
		{"resume, with the start's fields", `{"configurationId":"other","language":"es-ES","interviewId":"` + first.InterviewID + `"}`, testKey, 200},
		{"unknown interview", `{"configurationId":"flow-1","interviewId":"0123456789abcdef01234567"}`, testKey, 404},
		{"deleted interview", `{"interviewId":"` + gone.InterviewID + `"}`, testKey, 404},
		{"no api key", `{"interviewId":"` + first.InterviewID + `"}`, "", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do("POST", path, tt.body, "api-version", "1.0", "x-api-key", tt.key)
			if tt.want != 200 {
				wantError(t, a, tt.want, path)
				return
			}
			var s started
			if a.code != 200 || json.Unmarshal(a.body, &s) != nil {
				t.Fatalf("HTTP %d %s", a.code, a.body)
			}
			if s.InterviewID != first.InterviewID || s.Token != first.Token || s.InterviewCode != first.InterviewCode ||
				s.ClientID != first.ClientID || s.ExistingSession == nil || !*s.ExistingSession {
				t.Fatalf("resumed %+v, want %+v with existingSession true", s, first)
			}
		})
	}
	if info, _ := h.sim.Session(first.InterviewID); info.Start.ConfigurationID != "flow-1" || info.Start.Language != "en-US" {
		t.Errorf("a resume changed what the start asked for: %+v", info.Start)
	}
	if a := h.sessionGet("/0/omni/get/onboarding/status", first.Token); a.code != 200 {
		t.Errorf("the resumed token: %d %s", a.code, a.body)
	}
}

// TestCallsWithoutAPIKey: every upstream API call without an x-api-key
// header counts, on every route, answered or refused; control and flow
// routes do not.
func TestCallsWithoutAPIKey(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, AdminToken: testAdmin, AdminEmail: "e@x", AdminPassword: "pw"})
	s := h.start()
	calls := []struct {
		method, path, body string
		withKey            bool
	}{
		{"POST", "/omni/start", `{"configurationId":"f"}`, true},
		{"POST", "/omni/start", `{"configurationId":"f"}`, false},
		{"POST", "/executive/log-in", `{"email":"e@x","password":"pw"}`, true},
		{"POST", "/executive/log-in", `{"email":"e@x","password":"pw"}`, false},
		{"GET", "/0/omni/onboarding-url", "", true},
		{"GET", "/0/omni/onboarding-url", "", false},
		{"GET", "/omni/onboarding-url", "", false},
		{"GET", "/0/omni/get/onboarding/status", "", true},
		{"GET", "/0/omni/get/onboarding/status", "", false},
		{"GET", "/omni/get/onboarding/status?id=" + s.InterviewID, "", false},
		{"GET", "/0/omni/get/score", "", false},
		{"GET", "/omni/get/score?id=" + s.InterviewID, "", false},
		{"GET", "/omni/finish-status", "", false},
		{"GET", "/omni/finish-status", "", true},
	}
	want := int64(0)
	for _, c := range calls {
		hdr := []string{"api-version", "1.0", "X-Incode-Hardware-Id", s.Token}
		if c.withKey {
			hdr = append(hdr, "x-api-key", testKey)
		} else {
			want++
		}
		h.do(c.method, c.path, c.body, hdr...)
	}
	h.do("GET", "/sim/stats", "")
	h.do("GET", h.flowPath(s), "")
	ans := h.do("GET", "/sim/stats", "")
	var st struct {
		CallsWithoutAPIKey *int64 `json:"calls_without_api_key"`
	}
	if err := json.Unmarshal(ans.body, &st); err != nil || st.CallsWithoutAPIKey == nil {
		t.Fatalf("stats %s: %v", ans.body, err)
	}
	want++ // the onboarding-url read flowPath makes
	if *st.CallsWithoutAPIKey != want {
		t.Fatalf("calls_without_api_key %d, want %d", *st.CallsWithoutAPIKey, want)
	}
	if code := h.do("GET", "/0/omni/get/onboarding/status", "", "api-version", "1.0", "x-api-key", testKey, "X-Incode-Hardware-Id", s.Token).code; code != http.StatusOK {
		t.Fatalf("a session read with the API key: %d", code)
	}
	if n := h.sim.Stats().CallsWithoutAPIKey; n != want {
		t.Fatalf("a call with the key was counted: %d, want %d", n, want)
	}
}
