package sse_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/relay/relaytest"
	"github.com/pushgate/pushgate/sse"
)

// relayTo is the relay of a test gateway, to rcv.
func relayTo(rcv *relaytest.Receiver, kinds ...string) relay.Config {
	return relay.Config{URLs: []string{rcv.URL + "/hook"}, Secrets: []string{relaytest.Secret}, Kinds: kinds,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Poll: 10 * time.Millisecond, Logger: quiet}
}

// TestRelayedWebhooks: every webhook the gateway answers 200 reaches the
// backend byte for byte, signed (a status it applies, a late one, one of
// an interview it does not track, an undocumented status); a webhook it
// refuses does not.
func TestRelayedWebhooks(t *testing.T) {
	rcv := relaytest.New(t, nil)
	g := newGateway(t, options{interval: time.Hour, handler: sse.Config{WebhookSecret: webhookSecret}, relay: relayTo(rcv, relay.KindUpstream)})
	s := g.start()
	taken := []string{
		`{ "interviewId" : "` + s.InterviewID + `", "onboardingStatus":"FACE_VALIDATION_FINISHED","externalId":12345 }`,
		`{"interviewId":"` + s.InterviewID + `","onboardingStatus":"ID_VALIDATION_FINISHED","clientId":"acme"}`, // late: ignored, still relayed
		`{"interviewId":"someone-elses","onboardingStatus":"ONBOARDING_FINISHED"}`,
		`{"interviewId":"` + s.InterviewID + `","onboardingStatus":"SOMETHING_NEW"}`,
	}
	for _, body := range taken {
		if code, resp := g.postWebhook(webhookSecret, body); code != 200 {
			t.Fatalf("%s: %d %s", body, code, resp)
		}
	}
	for _, refused := range []struct{ secret, body string }{
		{"wrong-secret", taken[0]},
		{webhookSecret, `{"interviewId":"` + s.InterviewID + `"}`},
		{webhookSecret, `{"interviewId":"` + s.InterviewID + `","onboardingStatus":"bad status"}`},
	} {
		if code, _ := g.postWebhook(refused.secret, refused.body); code == 200 {
			t.Fatalf("%s taken", refused.body)
		}
	}
	got := rcv.WaitAccepted(len(taken), 10*time.Second)
	time.Sleep(100 * time.Millisecond) // anything else would come within it
	var bodies []string
	for _, a := range rcv.All() {
		if !a.Valid || a.Kind != relay.KindUpstream {
			t.Fatalf("%s: kind %s, valid %v", a.Body, a.Kind, a.Valid)
		}
		bodies = append(bodies, string(a.Body))
	}
	want := slices.Clone(taken)
	slices.Sort(want)
	slices.Sort(bodies)
	if !slices.Equal(bodies, want) || len(got) != len(taken) {
		t.Fatalf("relayed\n%s\nwant the webhooks taken, byte for byte\n%s", strings.Join(bodies, "\n"), strings.Join(want, "\n"))
	}
}

// TestRelaySessionEvents: a session the backend starts with an external
// id: its changes arrive as session.status, its end as one session.ended
// with the verdict, each carrying the external id.
func TestRelaySessionEvents(t *testing.T) {
	rcv := relaytest.New(t, nil)
	o := options{relay: relayTo(rcv, relay.KindStatus, relay.KindEnded)}
	o.handler.APITokens = []string{apiToken}
	g := newGateway(t, o)
	code, _, body := g.api(http.MethodPost, "/v1/sessions", apiToken, `{"externalCustomerId":"customer-7"}`)
	c := decodeCreated(t, code, body)
	g.follow(c, "ID_VALIDATION_FINISHED")
	g.setStatus(c.InterviewID, "ONBOARDING_FINISHED")
	got := rcv.WaitAccepted(4, 10*time.Second)
	var seen []string
	for _, a := range got {
		e := a.Event()
		if !a.Valid || e.InterviewID != c.InterviewID || e.ExternalID != "customer-7" {
			t.Fatalf("%s (valid %v): want this session's, with its external id", a.Body, a.Valid)
		}
		what := e.Type + ":" + e.Status
		if e.Verdict != nil {
			what += ":" + e.Reason + ":" + *e.Verdict
		}
		seen = append(seen, what)
	}
	want := []string{"session.status:UNKNOWN", "session.status:ID_VALIDATION_FINISHED", "session.status:ONBOARDING_FINISHED", "session.ended:ONBOARDING_FINISHED:finished:OK"}
	if !slices.Equal(seen, want) {
		t.Fatalf("got %v, want %v", seen, want)
	}
}
