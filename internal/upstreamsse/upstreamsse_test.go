package upstreamsse_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/internal/upstreamsse"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// sessions returns Sessions of a client of a simulator of its own.
func sessions(t *testing.T, ceiling *rate.Limiter) (upstreamsse.Sessions, *simulator.Simulator, string) {
	t.Helper()
	sim := simulator.New(simulator.Config{APIKey: "key"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client, err := upstream.New(upstream.Config{BaseURL: srv.URL, APIKey: "key", FlowID: "flow"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return upstreamsse.Sessions{Client: client, Ceiling: ceiling}, sim, srv.URL
}

// TestSessions: a session started through Sessions has its onboarding
// URL; its status and score read as the upstream answers them.
func TestSessions(t *testing.T) {
	s, sim, url := sessions(t, nil)
	ctx := t.Context()
	up, err := s.StartSession(ctx, sse.StartOptions{})
	if err != nil || up.InterviewID == "" || up.SessionToken == "" || !strings.HasPrefix(up.FlowURL, url+"/flow/"+up.InterviewID) {
		t.Fatalf("StartSession: %+v, %v", up, err)
	}
	if status, err := s.SessionStatus(ctx, up.SessionToken); err != nil || status != simulator.Flow[0] {
		t.Fatalf("SessionStatus: %q, %v, want %s", status, err, simulator.Flow[0])
	}
	if err := sim.SetStatus(up.InterviewID, "ONBOARDING_FINISHED"); err != nil {
		t.Fatal(err)
	}
	if score, err := s.Score(ctx, up.InterviewID, up.SessionToken); err != nil || score.Status != simulator.OutcomeOK || len(score.Raw) == 0 {
		t.Fatalf("Score: %+v, %v, want the verdict OK and the whole answer", score, err)
	}
}

// TestSessionsUnderTheCeiling: every call waits for its turn; a session
// start takes both its turns before its first call, so with one turn to
// spare it starts nothing, and says the wait ran out.
func TestSessionsUnderTheCeiling(t *testing.T) {
	s, sim, _ := sessions(t, rate.NewLimiter(rate.Every(time.Hour), 1))
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := s.StartSession(ctx, sse.StartOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StartSession with one turn in an hour: %v, want a deadline exceeded", err)
	}
	if st := sim.Stats(); st.Start != 0 || st.OnboardingURL != 0 {
		t.Fatalf("upstream saw %d starts and %d onboarding URL calls, want none", st.Start, st.OnboardingURL)
	}
	if _, err := s.Score(ctx, "an-interview", "a-token"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Score with no turn left: %v, want a deadline exceeded", err)
	}
	if _, err := s.SessionStatus(ctx, "a-token"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SessionStatus with no turn left: %v, want a deadline exceeded", err)
	}
	if st := sim.Stats(); st.Score != 0 || st.Status != 0 {
		t.Fatalf("upstream saw %d score and %d status calls, want none", st.Score, st.Status)
	}
}
