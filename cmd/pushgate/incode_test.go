package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/sse/ssetest"
)

// TestIncodeRoundTrip runs the command against its built-in simulator as
// Incode behaves: webhooks authenticated by a dashboard custom header
// (-webhook-header), retried late and carrying fields of any type, and a
// session that expires. Every upstream call carries x-api-key.
func TestIncodeRoundTrip(t *testing.T) {
	const hookHeader, hookValue = "X-Incode-Hook", "a-dashboard-header-secret-of-32-bytes"
	in := start(t, "-webhook-header", hookHeader+": "+hookValue, "-poll-interval", "200ms")
	hook := func(value, body string) (int, string) {
		t.Helper()
		return postJSON(t, in.base+"/webhooks/onboarding-status", body, hookHeader, value)
	}
	status := func(id, s string) string {
		return `{"interviewId":"` + id + `","onboardingStatus":"` + s + `","externalId":12345,"clientId":"acme","flowId":"f"}`
	}
	open := func(s session) *ssetest.Stream {
		req, _ := http.NewRequest(http.MethodGet, in.base+"/events?interviewId="+s.InterviewID, nil)
		req.Header.Set("X-Token", s.Token)
		st := ssetest.Open(t, http.DefaultClient, req)
		if u := st.NextStatus(t); u.Status != "UNKNOWN" {
			t.Fatalf("snapshot %+v", u)
		}
		return st
	}

	// Late and repeated webhooks, with the dashboard's header.
	var s session
	getJSON(t, in.base+"/onboarding-url", &s)
	st := open(s)
	for _, step := range []string{"FACE_VALIDATION_FINISHED", "ID_VALIDATION_FINISHED", "GOVERNMENT_VALIDATION_FINISHED", "ONBOARDING_FINISHED", "ONBOARDING_FINISHED"} {
		if code, body := hook(hookValue, status(s.InterviewID, step)); code != 200 || !strings.Contains(body, `"success":true`) {
			t.Fatalf("webhook %s: %d %s, want 200", step, code, body)
		}
		if step == "ID_VALIDATION_FINISHED" { // the late one: the page still shows the face check
			resp := authGet(t, in.base+"/onboarding-status", s.InterviewID, s.Token)
			var got struct{ OnboardingStatus string }
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if got.OnboardingStatus != "FACE_VALIDATION_FINISHED" {
				t.Fatalf("/onboarding-status after a late webhook: %q, want FACE_VALIDATION_FINISHED", got.OnboardingStatus)
			}
		}
	}
	var seen []string
	for _, ev := range st.Ended(t) {
		u, err := ssetest.Status(ev)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, u.Status)
	}
	if strings.Join(seen, ",") != "FACE_VALIDATION_FINISHED,GOVERNMENT_VALIDATION_FINISHED,ONBOARDING_FINISHED" {
		t.Fatalf("the stream got %v, want FACE, GOVERNMENT, ONBOARDING_FINISHED once each", seen)
	}
	if code, body := hook("a-wrong-value-of-more-than-32-bytes-long", status(s.InterviewID, "UNKNOWN")); code != 401 || !strings.Contains(body, hookHeader) {
		t.Fatalf("a wrong header value: %d %s, want 401 naming the header", code, body)
	}

	// A session that expires, set through the simulator's control API as a
	// flow timeout sets it; the simulator's webhook (with the header) ends
	// the stream.
	var e session
	getJSON(t, in.base+"/onboarding-url", &e)
	st = open(e)
	post(t, in.sim+"/sim/interviews/"+e.InterviewID+"/status", `{"onboardingStatus":"EXPIRED"}`)
	end := st.Next(t)
	if end.Type != "end" || !strings.Contains(end.Data, `"reason":"expired"`) {
		t.Fatalf("after EXPIRED the stream got %+v, want event end with reason expired", end)
	}
	if rest := st.Ended(t); len(rest) != 0 {
		t.Fatalf("after the end: %v, want the stream closed", rest)
	}
	resp := authGet(t, in.base+"/fetch-score", e.InterviewID, e.Token)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("/fetch-score of an expired session: %d, want 410", resp.StatusCode)
	}

	var stats struct {
		WithoutKey int64 `json:"calls_without_api_key"`
		Status     int64 `json:"status"`
		Webhooks   int64 `json:"webhooks"`
	}
	// The stream may end by a read before the simulator's webhook of
	// EXPIRED is counted: wait for its count, not for the end.
	waitFor(t, "the simulator's webhook of EXPIRED counted", func() bool {
		getJSON(t, in.sim+"/sim/stats", &stats)
		return stats.Webhooks > 0
	})
	if stats.WithoutKey != 0 || stats.Status == 0 || stats.Webhooks == 0 {
		t.Fatalf("simulator stats %+v: want status calls and webhooks, and no call without x-api-key", stats)
	}
}
