package pollertest

import (
	"context"
	"sync"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
)

// Source is a hand-written upstream: a status per interview (UNKNOWN until
// Set), an optional error, and a record of the calls it took. While held
// (Hold), calls wait until Release or the end of their context. The zero
// value is ready. Its methods are safe for concurrent use.
type Source struct {
	mu          sync.Mutex // protects every field
	status      map[string]string
	err         error
	calls       map[string]int
	tokens      map[string][]string // session tokens sent, per interview, in order
	gate        chan struct{}       // non-nil while held
	inflight    int
	maxInflight int
}

var _ poller.Source = (*Source)(nil)

// Status answers the interview's status, or the error set with SetErr.
func (s *Source) Status(ctx context.Context, interviewID, sessionToken string) (string, error) {
	s.mu.Lock()
	if s.calls == nil {
		s.calls, s.tokens = map[string]int{}, map[string][]string{}
	}
	s.calls[interviewID]++
	s.tokens[interviewID] = append(s.tokens[interviewID], sessionToken)
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	gate := s.gate
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if err := s.answer(ctx, gate); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.status[interviewID]; ok {
		return st, nil
	}
	return flow.StatusUnknown, nil
}

// answer waits at gate, if any, until it opens or ctx ends, then returns
// the error set with SetErr.
func (s *Source) answer(ctx context.Context, gate chan struct{}) error {
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Set makes the interview's status status from now on.
func (s *Source) Set(interviewID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == nil {
		s.status = map[string]string{}
	}
	s.status[interviewID] = status
}

// SetErr makes every call fail with err from now on; nil ends that.
func (s *Source) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Hold makes calls from now on wait until Release.
func (s *Source) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

// Heal makes later calls answer at once, while those already held stay
// stuck until their context ends, as calls on a dead connection do after
// the upstream came back.
func (s *Source) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = nil
}

// Release lets the held calls, and every later one, go on.
func (s *Source) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// Calls returns how many calls asked for the interview.
func (s *Source) Calls(interviewID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[interviewID]
}

// Total returns how many calls were made, for every interview.
func (s *Source) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// Tokens returns the session tokens the interview's calls carried, in order.
func (s *Source) Tokens(interviewID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens[interviewID]...)
}

// InFlight returns the calls in flight now and the most there ever were.
func (s *Source) InFlight() (now, most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight, s.maxInflight
}

// Recorder is a Publisher that keeps every update it is given. The zero
// value is ready. Its methods are safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex // protects updates
	updates []flow.Update
}

var _ poller.Publisher = (*Recorder)(nil)

// Publish records u.
func (r *Recorder) Publish(u flow.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
}

// Of returns the updates published for the interview, in order.
func (r *Recorder) Of(interviewID string) []flow.Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []flow.Update
	for _, u := range r.updates {
		if u.InterviewID == interviewID {
			out = append(out, u)
		}
	}
	return out
}

// Statuses returns the statuses published for the interview, in order.
func (r *Recorder) Statuses(interviewID string) []string {
	var out []string
	for _, u := range r.Of(interviewID) {
		out = append(out, u.Status)
	}
	return out
}
