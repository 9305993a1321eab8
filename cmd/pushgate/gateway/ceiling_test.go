package gateway_test

import (
	"testing"
	"time"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/sse"
)

// TestEveryUpstreamCallUnderTheCeiling: session starts, onboarding URLs
// and score reads wait under -max-upstream-rate like status reads; a call
// that cannot get its turn within the request's time is not made.
func TestEveryUpstreamCallUnderTheCeiling(t *testing.T) {
	t.Parallel()
	g := serve(t, gateway.Config{MaxUpstreamCallsPerSecond: 0.1, HTTP: sse.Config{RequestTimeout: time.Second}})
	resp, body := get(t, g.base+"/onboarding-url", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a session start needing two calls under a ceiling of one per 10s: %d %s, want 503", resp.StatusCode, body)
	}
	st := g.Simulator.Stats()
	if st.Start != 0 || st.OnboardingURL != 0 {
		t.Fatalf("upstream saw %d starts and %d onboarding URL calls; want none: a session is not started without the turn of its URL call", st.Start, st.OnboardingURL)
	}
}

// TestOneCeilingForEveryCall: MaxUpstreamCallsPerSecond is one ceiling shared by
// the pollers' reads and probes and the sessions' calls, not one each:
// while a poll every 5 ms asks for ten times the ceiling, sessions still
// start, and all the upstream calls together stay within the ceiling's
// burst and rate over the gateway's life.
func TestOneCeilingForEveryCall(t *testing.T) {
	t.Parallel()
	const perSecond, burst, sessions = 20, 2, 4 // poller.NewCeiling's burst: a tenth of the rate
	began := time.Now()                         // before the ceiling, made by New
	// Probes are off: under so tight a ceiling, one every 5 ms would queue
	// up for its turns (each waits up to CallTimeout) and crowd the
	// sessions out.
	g := serve(t, gateway.Config{MaxUpstreamCallsPerSecond: perSecond, Poller: poller.Config{Interval: 5 * time.Millisecond, ProbeInterval: time.Hour},
		HTTP: sse.Config{RequestTimeout: 10 * time.Second}})
	st := open(t, g.base, start(t, g.base)) // its interview is polled from now on
	st.NextStatus(t)
	for range sessions - 1 {
		start(t, g.base) // each waits for its two turns among the reads
	}
	waitFor(t, "ten status reads", func() bool { return g.Simulator.Stats().StatusReads >= 10 })
	calls := g.Simulator.Stats()
	limit := burst + perSecond*time.Since(began).Seconds()
	if calls.Start != sessions || calls.OnboardingURL != sessions {
		t.Fatalf("%d starts and %d onboarding URLs, want %d of each", calls.Start, calls.OnboardingURL, sessions)
	}
	if n := calls.Start + calls.OnboardingURL + calls.Status + calls.Score; float64(n) > limit {
		t.Fatalf("%d upstream calls (%+v), over the shared ceiling's %.0f since New", n, calls, limit)
	}
}
