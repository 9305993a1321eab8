package sse

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/pushgate/pushgate/poller/flow"
)

// Upstream is what sse needs of the onboarding API besides status reads,
// which go through Statuses. internal/upstreamsse adapts the upstream
// client to it, and cmd/pushgate/gateway wires that in; its errors are
// mapped by behaviour (see httpError).
type Upstream interface {
	// StartSession starts an onboarding session and returns it with the
	// URL of the flow the page shows.
	StartSession(ctx context.Context, opts StartOptions) (UpstreamSession, error)
	// Score reads the score of an interview, with its session token.
	Score(ctx context.Context, interviewID, sessionToken string) (Score, error)
	// SessionStatus reads a session's status with its session token
	// alone: an error that is NotFound or Unauthorized means the upstream
	// does not take that token (unknown, expired or deleted session).
	SessionStatus(ctx context.Context, sessionToken string) (string, error)
}

// maxSessionTokenLen caps an imported upstream session token.
const maxSessionTokenLen = 2048

// StartOptions are what a new session starts with.
type StartOptions struct {
	Language string // the flow's language, one of Config.Languages
	// Set by the integrator's backend only, never by a browser:
	ExternalCustomerID string         // the person's id in the customer's own systems
	RedirectionURL     string         // where the flow sends the person at its end
	CustomFields       map[string]any // kept with the session upstream
	// ConfigurationID is the upstream flow the session runs: one of
	// Config.Flows, the first for a browser's session. Empty means the
	// upstream's own default.
	ConfigurationID string
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
	upstream    Upstream
	statuses    Statuses
	tokens      *Tokens
	timeout     time.Duration      // bounds the upstream work of one request
	flowOrigins []string           // where onboarding URLs must point: the page frames only them; "*" frames any
	log         *slog.Logger       //
	metrics     *handlerMetrics    //
	warnedAt    atomic.Int64       // unix ms of the last log of a flow origin mismatch
	scores      singleflight.Group // upstream score reads, keyed by interview id and status
	cache       *scoreCache        // scores read, per interview
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
func (s *sessions) start(ctx context.Context, opts StartOptions) (browserSession, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	up, err := s.upstream.StartSession(ctx, opts)
	if err != nil {
		return browserSession{}, err
	}
	if !validInterviewID(up.InterviewID) {
		return browserSession{}, fmt.Errorf("start answered interview id %q: %w", up.InterviewID, errMalformedAnswer)
	}
	s.checkFlowOrigin(up.FlowURL)
	s.statuses.Register(up.InterviewID, up.SessionToken)
	tok, exp := s.tokens.Issue(up.InterviewID)
	return browserSession{InterviewID: up.InterviewID, FlowURL: up.FlowURL, Token: tok, Expires: exp}, nil
}

// adopt takes a session the integrator's backend started with the
// upstream itself: once the upstream has taken its session token, the
// interview is registered as start registers it, and the browser's token
// issued. A flowURL, when given, is checked against the flow origin as
// start checks the URLs it gets.
func (s *sessions) adopt(ctx context.Context, interviewID, sessionToken, flowURL string) (browserSession, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if known := s.statuses.SessionToken(interviewID); known != "" && known != sessionToken {
		// Taking it would make this interview's browsers and backend
		// follow another session; the upstream's session calls cannot
		// tell which one the token is of.
		return browserSession{}, errorf(http.StatusConflict, "this interviewId is already watched with another sessionToken").coded("interview_conflict")
	}
	status, err := s.upstream.SessionStatus(ctx, sessionToken)
	if err != nil {
		if is(err, notFound.NotFound) || is(err, unauthorized.Unauthorized) {
			return browserSession{}, errorf(http.StatusUnprocessableEntity, "the upstream does not take this sessionToken: the session is unknown, expired or deleted")
		}
		return browserSession{}, err
	}
	if status == flow.StatusExpired {
		return browserSession{}, sessionEnded(flow.EndExpired) // its flow timed out: nothing will follow
	}
	if flowURL != "" {
		s.checkFlowOrigin(flowURL)
	}
	s.statuses.Register(interviewID, sessionToken)
	tok, exp := s.tokens.Issue(interviewID)
	return browserSession{InterviewID: interviewID, FlowURL: flowURL, Token: tok, Expires: exp}, nil
}

// checkFlowOrigin reports, loudly, an onboarding URL on an origin the
// flow origins do not list: the page's CSP blocks such an iframe, so users
// would see a blank flow. With "*" every origin is framed. The log says
// which origin to configure; it is written at most once a minute, and
// every such URL is counted.
func (s *sessions) checkFlowOrigin(flowURL string) {
	if framesAny(s.flowOrigins) {
		return
	}
	got, ok := flowURLOrigin(flowURL)
	if ok && slices.Contains(s.flowOrigins, got) {
		return
	}
	s.metrics.flowOriginMismatch()
	now := time.Now().UnixMilli()
	if last := s.warnedAt.Load(); now-last > time.Minute.Milliseconds() && s.warnedAt.CompareAndSwap(last, now) {
		if !ok {
			got = "(none)" // the URL itself may carry a credential: it is not logged
		}
		s.log.Error("the upstream's onboarding URLs are on an origin -flow-origin does not list: the page's CSP blocks them and the iframe stays blank; add theirs to -flow-origin",
			"flow_origin", strings.Join(s.flowOrigins, ","), "onboarding_url_origin", got)
	}
}

// status reads the interview's status through the poller's shared path. A
// session the upstream forgot answers 410 Gone.
func (s *sessions) status(ctx context.Context, interviewID string) (flow.Update, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	u, err := s.statuses.Current(ctx, interviewID)
	if err == nil && u.End != "" {
		return u, sessionEnded(u.End)
	}
	return u, err
}

// sessionEnded is the error for a session the upstream forgot.
func sessionEnded(reason string) *Error {
	if reason == flow.EndNotFound {
		return errorf(http.StatusGone, "this verification session no longer exists; start a new one").coded("session_not_found")
	}
	return errorf(http.StatusGone, "this verification session has expired; start a new one").coded("session_expired")
}

// score reads the score once the flow finished. It is kept for the status
// it was read at (see scoreCache); concurrent requests for one interview
// share one upstream call, which runs under its own timeout: a caller
// giving up does not fail the others.
func (s *sessions) score(ctx context.Context, interviewID string) (Score, error) {
	u, err := s.status(ctx, interviewID)
	if err != nil {
		return Score{}, err
	}
	if !u.Finished() {
		return Score{}, errorf(http.StatusConflict, "onboarding not finished (status "+u.Status+"); the score is available after "+flow.StatusFinished)
	}
	if score, ok := s.cache.get(interviewID, u.Status); ok {
		return score, nil
	}
	ch := s.scores.DoChan(interviewID+"\x00"+u.Status, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		score, err := s.upstream.Score(ctx, interviewID, s.statuses.SessionToken(interviewID))
		if err == nil {
			s.cache.put(interviewID, u.Status, score)
		}
		return score, err
	})
	select {
	case res := <-ch:
		score, _ := res.Val.(Score)
		return score, res.Err
	case <-ctx.Done():
		return Score{}, ctx.Err()
	}
}
