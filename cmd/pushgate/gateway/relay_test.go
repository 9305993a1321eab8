package gateway_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/relay/relaytest"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// TestRelayWired: with relay URLs, New wires the relay to the handler
// (every webhook taken), to the pollers (every status) and, for the
// verdict of a finished flow, to the handler's score reads; its metrics
// are registered. Without URLs there is no relay, and no relay routes.
func TestRelayWired(t *testing.T) {
	t.Parallel()
	rcv := relaytest.New(t, nil)
	g := serve(t, gateway.Config{Poller: poller.Config{Interval: time.Hour}, Simulator: gateway.SimulatorConfig{Webhooks: true},
		Relay: relay.Config{URLs: []string{rcv.URL + "/hook"}, Secrets: []string{relaytest.Secret},
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Poll: 10 * time.Millisecond}})
	if g.Relay == nil {
		t.Fatal("no relay with relay URLs")
	}
	s := start(t, g.base)
	st := open(t, g.base, s)
	st.NextStatus(t)
	for _, status := range simulator.Flow[1:] {
		if err := g.Simulator.SetStatus(s.InterviewID, status); err != nil {
			t.Fatal(err)
		}
		if u := st.NextStatus(t); u.Status != status {
			t.Fatalf("got %+v, want %s", u, status)
		}
	}
	changes := len(simulator.Flow) - 1
	seen := map[string][]string{} // by kind: the statuses, in the order they arrived
	for _, a := range rcv.WaitAccepted(changes+len(simulator.Flow)+1, 10*time.Second) {
		e := a.Event()
		if !a.Valid || e.InterviewID != s.InterviewID {
			t.Fatalf("%s (valid %v): want this session's, signed", a.Body, a.Valid)
		}
		what := e.Status
		if a.Kind == relay.KindEnded && e.Verdict != nil {
			what += ":" + e.Reason + ":" + *e.Verdict
		}
		seen[a.Kind] = append(seen[a.Kind], what)
	}
	want := map[string][]string{
		relay.KindUpstream: simulator.Flow[1:],
		relay.KindStatus:   simulator.Flow,
		relay.KindEnded:    {flow.StatusFinished + ":finished:OK"},
	}
	for kind, statuses := range want {
		if !slices.Equal(seen[kind], statuses) {
			t.Errorf("%s events %v, want %v", kind, seen[kind], statuses)
		}
	}
	if _, body := get(t, g.base+"/metrics", nil); !strings.Contains(body, "# TYPE pushgate_relay_events_total counter") {
		t.Error("/metrics lacks the relay's pushgate_relay_events_total")
	}

	const apiToken = "an-api-token-of-32-bytes-or-more-0123456"
	off := serve(t, gateway.Config{HTTP: sse.Config{APITokens: []string{apiToken}}})
	if off.Relay != nil {
		t.Fatal("a relay without relay URLs")
	}
	if resp, body := get(t, off.base+"/v1/relay/failed", http.Header{"Authorization": {"Bearer " + apiToken}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /v1/relay/failed without a relay: %s %s, want 404", resp.Status, body)
	}
}
