// Package upstreamsse gives package sse what it needs of the upstream
// client besides status reads (sse.Upstream): session starts, scores and
// session status reads, each under the upstream call ceiling the poller's
// status reads share. cmd/pushgate/gateway wires it, and so do sse's
// tests, which build their gateway without the command's packages.
//
// Where it sits: between upstream and sse, beside the poller, which reads
// statuses from the same client.
package upstreamsse

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream"
)

// Sessions is the upstream client as sse's Upstream. Each call waits for
// its turn under Ceiling, when there is one (-max-upstream-rate).
type Sessions struct {
	Client  *upstream.Client // required
	Ceiling *rate.Limiter    // nil: no ceiling
}

var _ sse.Upstream = Sessions{}

// wait waits for a call's turn under the ceiling, at most until ctx ends.
func (s Sessions) wait(ctx context.Context) error {
	if s.Ceiling == nil {
		return nil
	}
	if err := s.Ceiling.Wait(ctx); err != nil {
		return fmt.Errorf("waiting under the upstream call ceiling: %w", context.DeadlineExceeded)
	}
	return nil
}

// StartSession starts a session and fetches its onboarding URL: two calls,
// whose turns under the ceiling are both taken first, so a session is
// never started (and paid for) without its URL.
func (s Sessions) StartSession(ctx context.Context, opts sse.StartOptions) (sse.UpstreamSession, error) {
	for range 2 {
		if err := s.wait(ctx); err != nil {
			return sse.UpstreamSession{}, err
		}
	}
	up, err := s.Client.Start(ctx, upstream.StartOptions(opts))
	if err != nil {
		return sse.UpstreamSession{}, err
	}
	flowURL, err := s.Client.OnboardingURL(ctx, up)
	if err != nil {
		return sse.UpstreamSession{}, err
	}
	return sse.UpstreamSession{InterviewID: up.InterviewID, SessionToken: up.Token, FlowURL: flowURL}, nil
}

// Score reads an interview's score.
func (s Sessions) Score(ctx context.Context, interviewID, sessionToken string) (sse.Score, error) {
	if err := s.wait(ctx); err != nil {
		return sse.Score{}, err
	}
	score, err := s.Client.Score(ctx, interviewID, sessionToken)
	if err != nil {
		return sse.Score{}, err
	}
	return sse.Score{Status: score.Status, Raw: score.Raw}, nil
}

// SessionStatus reads a session's status with its session token alone.
func (s Sessions) SessionStatus(ctx context.Context, sessionToken string) (string, error) {
	if err := s.wait(ctx); err != nil {
		return "", err
	}
	return s.Client.SessionStatus(ctx, sessionToken)
}
