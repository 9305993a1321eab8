package sse

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/pushgate/pushgate/poller"
)

// Upstream is what sse needs of the onboarding API besides status reads,
// which go through the poller. cmd wires the upstream client in; its
// errors are mapped by behaviour (see httpError).
type Upstream interface {
	// StartSession starts an onboarding session and returns it with the
	// URL of the flow the page shows.
	StartSession(ctx context.Context) (UpstreamSession, error)
	// Score reads the score of an interview, with its session token.
	Score(ctx context.Context, interviewID, sessionToken string) (Score, error)
}

// UpstreamSession is a session the upstream started.
type UpstreamSession struct {
	InterviewID  string
	SessionToken string // the upstream's credential; never sent to the browser
	FlowURL      string // the onboarding flow the page shows in its iframe
}

// Score is an interview's score as the upstream gave it.
type Score struct {
	Status string          // the verdict (overall.status): OK, WARN, FAIL...; "" when absent
	Raw    json.RawMessage // the whole answer, a JSON object
}

// sessions starts onboarding sessions and answers their statuses and
// scores: the work behind /onboarding-url, /onboarding-status and
// /fetch-score, apart from HTTP.
type sessions struct {
	upstream Upstream
	statuses *poller.Manager
	tokens   *Tokens
	timeout  time.Duration      // bounds the upstream work of one request
	scores   singleflight.Group // upstream score reads, keyed by interview id
}

// browserSession is what the browser gets for a new session.
type browserSession struct {
	InterviewID string
	FlowURL     string
	Token       string // the browser's token for this interview
	Expires     time.Time
}

// start starts an upstream session, registers it with the poller, so its
// status is read with its session token, and issues the browser's token.
func (s *sessions) start(ctx context.Context) (browserSession, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	up, err := s.upstream.StartSession(ctx)
	if err != nil {
		return browserSession{}, err
	}
	if !validInterviewID(up.InterviewID) {
		return browserSession{}, fmt.Errorf("start answered interview id %q: %w", up.InterviewID, errMalformedAnswer)
	}
	s.statuses.Register(up.InterviewID, up.SessionToken)
	tok, exp := s.tokens.Issue(up.InterviewID)
	return browserSession{InterviewID: up.InterviewID, FlowURL: up.FlowURL, Token: tok, Expires: exp}, nil
}

// status reads the interview's status through the poller's shared path.
func (s *sessions) status(ctx context.Context, interviewID string) (poller.Update, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.statuses.Current(ctx, interviewID)
}

// score reads the score once the flow finished. Concurrent requests for
// one interview share one upstream call, which runs under its own timeout:
// a caller giving up does not fail the others.
func (s *sessions) score(ctx context.Context, interviewID string) (Score, error) {
	u, err := s.status(ctx, interviewID)
	if err != nil {
		return Score{}, err
	}
	if !u.Finished() {
		return Score{}, errorf(http.StatusConflict, "onboarding not finished (status "+u.Status+"); the score is available after "+poller.StatusFinished)
	}
	ch := s.scores.DoChan(interviewID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		return s.upstream.Score(ctx, interviewID, s.statuses.SessionToken(interviewID))
	})
	select {
	case res := <-ch:
		score, _ := res.Val.(Score)
		return score, res.Err
	case <-ctx.Done():
		return Score{}, ctx.Err()
	}
}
