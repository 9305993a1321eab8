package sse_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
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
	var first poller.Update
	for _, st := range streams {
		first = statusOf(t, st.Next(t))
	}
	prev := first
	for _, status := range flow[1:] {
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
	for _, status := range flow[1:] {
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
	if strings.Join(got, ",") != strings.Join(flow[1:], ",") {
		t.Fatalf("got %v, want each change once: %v", got, flow[1:])
	}
}

// TestWebhookOlderStatusIsIgnored: the upstream may deliver an old webhook
// late; the flow only moves forward, so it changes nothing.
func TestWebhookOlderStatusIsIgnored(t *testing.T) {
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{WebhookSecret: webhookSecret}})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	for _, status := range []string{"FACE_VALIDATION_FINISHED", "ID_VALIDATION_FINISHED", "MANUAL_REVIEW_APPROVED"} {
		if code, body := g.postWebhook(webhookSecret, hook(s.InterviewID, status)); code != 200 || !strings.Contains(body, `"success":true`) {
			t.Fatalf("webhook %s: %d %s", status, code, body)
		}
	}
	for _, want := range []string{"FACE_VALIDATION_FINISHED", "MANUAL_REVIEW_APPROVED"} {
		if u := statusOf(t, st.Next(t)); u.Status != want {
			t.Fatalf("got %s, want %s (the late ID_VALIDATION_FINISHED ignored)", u.Status, want)
		}
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
		{"oversized body", webhookSecret, `{"interviewId":"` + s.InterviewID + `","x":"` + strings.Repeat("x", 8<<10) + `"}`, 413, "too large"},
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
	g.setStatus(s.InterviewID, flow[1]) // a webhook arrives
	statusOf(t, st.Next(t))
	calls := func() int64 { return g.sim.Stats().StatusByInterview[s.InterviewID] }
	before := calls()
	time.Sleep(time.Second)
	if n := calls() - before; n > 3 {
		t.Fatalf("%d status calls in 1 s after a webhook, want about 2 (the 500 ms safety interval), not 50", n)
	}
}
