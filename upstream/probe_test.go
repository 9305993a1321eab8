package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// TestHealthyCountsDeadlines: a call to a hanging upstream that ends at a
// deadline, the Client's or its caller's, found the upstream unavailable;
// one whose caller cancelled it found nothing.
func TestHealthyCountsDeadlines(t *testing.T) {
	sim, srv := newSim(t)
	const clientTimeout = 200 * time.Millisecond
	c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, Timeout: clientTimeout})
	s, err := c.Start(context.Background(), upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		healthy bool
	}{
		{"the Client's timeout", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, false},
		{"the caller's deadline, before the Client's", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), clientTimeout/4)
		}, false},
		{"the caller cancels", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(clientTimeout/4, cancel)
			return ctx, cancel
		}, true},
		{"the caller's context ended before the call", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
			return ctx, cancel
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim.ClearFaults()
			if _, err := c.Status(context.Background(), s.InterviewID, s.Token); err != nil || c.Healthy() != nil {
				t.Fatalf("a call to the upstream up: %v; Healthy() = %v", err, c.Healthy())
			}
			sim.SetFaults(simulator.Faults{Hang: true})
			ctx, cancel := tc.ctx()
			defer cancel()
			began := time.Now()
			_, err := c.Status(ctx, s.InterviewID, s.Token)
			if !errors.Is(err, upstream.ErrUnavailable) || time.Since(began) > 2*clientTimeout {
				t.Fatalf("Status in a hang = %v after %v, want unavailable within the timeout", err, time.Since(began))
			}
			if got := c.Healthy(); (got == nil) != tc.healthy {
				t.Fatalf("Healthy() = %v, want healthy=%v", got, tc.healthy)
			}
		})
	}
}

// TestProbe: the probe asks the session status endpoint with the API key
// and no session token; the upstream's 401 means it answers. Faults that concern no
// interview fail the probe, and its outcome counts for Healthy.
func TestProbe(t *testing.T) {
	sim, srv := newSim(t)
	c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminToken: testAdmin, Timeout: 200 * time.Millisecond})
	for _, tc := range []struct {
		name    string
		faults  *simulator.Faults
		want    error // nil: the probe says the upstream answers
		healthy bool
	}{
		{"up: 401", nil, nil, true},
		{"503", &simulator.Faults{ErrorRate: 1}, upstream.ErrUnavailable, false},
		{"hang", &simulator.Faults{Hang: true}, upstream.ErrUnavailable, false},
		{"429: the upstream answers", &simulator.Faults{ErrorRate: 1, Status: http.StatusTooManyRequests}, nil, true},
		{"a 200 to a call without a token", &simulator.Faults{MalformedRate: 1}, upstream.ErrMalformed, true},
		{"faults of one interview only", &simulator.Faults{ErrorRate: 1, Interviews: []string{"0123456789abcdef01234567"}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim.ClearFaults()
			if tc.faults != nil {
				sim.SetFaults(*tc.faults)
			}
			before := sim.Stats()
			err := c.Probe(context.Background())
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Probe() = %v, want %v", err, tc.want)
			}
			if got := c.Healthy(); (got == nil) != tc.healthy {
				t.Errorf("Healthy() = %v after the probe, want healthy=%v", got, tc.healthy)
			}
			after := sim.Stats()
			if after.Status-before.Status != 1 || after.StatusNoToken-before.StatusNoToken != 1 || after.Probes-before.Probes != 1 || after.StatusReads != before.StatusReads || len(after.StatusByInterview) != 0 {
				t.Errorf("the simulator counted %+v, want one status call without a token, about no interview", after)
			}
		})
	}
}
