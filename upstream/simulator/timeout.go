package simulator

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The flow timeout. The upstream gives each flow a timeout (set in its
// dashboard): a user who has not finished by then gets status EXPIRED, by
// webhook and by status read, and the session token keeps working for
// reads. Here each session gets Config.FlowTimeout from its start, or what
// the control API sets for it. One time.AfterFunc timer per session fires
// at its deadline; Close stops them all and waits for those already firing.

// ErrFlowExpired is returned for a step of a session whose flow has expired.
var ErrFlowExpired = errors.New("simulator: the onboarding session expired; start a new one")

// armTimeoutLocked sets the flow timeout of iv to d counted from its start
// (zero or less: none), replacing the one before. A deadline already past
// fires at once. Caller holds s.mu.
func (s *Simulator) armTimeoutLocked(iv *interview, d time.Duration) {
	if iv.timer != nil {
		iv.timer.Stop()
		iv.timer = nil
	}
	iv.deadline = time.Time{}
	if d <= 0 || s.closed {
		return
	}
	iv.deadline = iv.started.Add(d)
	id := iv.id
	iv.timer = time.AfterFunc(time.Until(iv.deadline), func() { s.flowTimedOut(id) })
}

// flowTimedOut runs on a timer's goroutine: it expires the session's flow,
// unless it has ended, it is deleted, Close has run, or its timeout was
// moved since the timer was armed.
func (s *Simulator) flowTimedOut(id string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.timeouts.Add(1) // under mu while not closed: before Close's Wait
	defer s.timeouts.Done()
	iv, ok := s.byID[id]
	expire := ok && !iv.deleted && !flowEnded(iv.status) && !iv.deadline.IsZero() && !time.Now().Before(iv.deadline)
	if expire {
		s.setStatusLocked(iv, StatusExpired)
		s.stats.FlowTimeouts++
	}
	s.mu.Unlock()
	if expire {
		s.log.Info("simulator: flow timed out", "interview", id, "status", StatusExpired)
	}
}

// stopTimeouts stops every flow timeout and waits for those firing; none
// is armed after it.
func (s *Simulator) stopTimeouts() {
	s.mu.Lock()
	s.closed = true
	for _, iv := range s.byID {
		if iv.timer != nil {
			iv.timer.Stop()
			iv.timer = nil
		}
	}
	s.mu.Unlock()
	s.timeouts.Wait()
}

// SetFlowTimeout sets the flow timeout of one session, counted from its
// start: a session whose flow has not ended by then gets status EXPIRED.
// Zero turns it off for that session; a timeout already past expires the
// flow at once.
func (s *Simulator) SetFlowTimeout(interviewID string, d time.Duration) error {
	if d < 0 {
		return errors.New("simulator: negative flow timeout")
	}
	err := s.update(interviewID, func(iv *interview) error {
		s.armTimeoutLocked(iv, d)
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("simulator: flow timeout set", "interview", interviewID, "timeout", d)
	return nil
}

// timeoutBody is what POST /sim/interviews/{id}/timeout takes: the
// session's flow timeout in milliseconds, counted from its start; 0 turns
// it off.
type timeoutBody struct {
	TimeoutMS *int64 `json:"timeout_ms"`
}

// maxTimeoutMS caps timeout_ms: a year.
const maxTimeoutMS = 365 * 24 * 3600 * 1000

func (s *Simulator) controlTimeout(w http.ResponseWriter, r *http.Request) {
	var body timeoutBody
	if !decodeChange(w, r, &body) {
		return
	}
	if body.TimeoutMS == nil || *body.TimeoutMS < 0 || *body.TimeoutMS > maxTimeoutMS {
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("timeout_ms must be given, within 0..%d", int64(maxTimeoutMS)))
		return
	}
	s.answerChange(w, r, s.SetFlowTimeout(r.PathValue("id"), time.Duration(*body.TimeoutMS)*time.Millisecond))
}
