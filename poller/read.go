package poller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushgate/pushgate/internal/backoff"
	"github.com/pushgate/pushgate/poller/flow"
)

// errCut is the error of a read that recoveries cut each time it was made
// (see recover): not an answer of the upstream, so not a failed read.
var errCut = errors.New("poller: the upstream call was cut by recoveries each time it was made")

// retryDelayer is implemented by source errors that carry the upstream's
// Retry-After.
type retryDelayer interface {
	RetryDelay() time.Duration
}

// sessionEnder is implemented by source errors that can tell the upstream
// has forgotten the session for good: SessionEnded answers EndExpired or
// EndNotFound then, "" otherwise.
type sessionEnder interface {
	SessionEnded() string
}

// This file is the read path (drawn in doc.go): Current answers from
// memory or joins sharedRead, whose one refresh per interview follows
// another node's read or calls the upstream under the caps.

// Current returns the interview's status. It answers from memory while a
// poller keeps the status fresh, after the flow finished, during a backoff,
// or when the last read is younger than one interval; otherwise it reads
// upstream through the shared singleflight call. ctx only bounds the wait:
// the read itself runs under CallTimeout and is not cancelled when this
// caller gives up. After a failed read, the last known status is returned
// if there is one.
func (m *Manager) Current(ctx context.Context, interviewID string) (flow.Update, error) {
	up := m.clusterUp() // before st.mu: it asks the cluster
	st, err := m.lock(interviewID)
	if err != nil {
		return flow.Update{}, err
	}
	now := time.Now()
	st.usedAt = now
	if st.curLocked().Seq > 0 && m.syncedLocked(st) && (st.stop != nil || st.freshLocked(now, m.cfg.Interval, up)) {
		u := st.curLocked()
		st.mu.Unlock()
		m.metrics.read("memory")
		return u, nil
	}
	st.mu.Unlock()
	return m.sharedRead(ctx, interviewID)
}

// sharedRead joins or starts the singleflight read of an interview and waits for
// it or for ctx.
func (m *Manager) sharedRead(ctx context.Context, interviewID string) (flow.Update, error) {
	ch := m.reads.DoChan(interviewID, func() (any, error) { return m.refresh(interviewID) })
	select {
	case r := <-ch:
		u, _ := r.Val.(flow.Update)
		switch {
		case r.Err != nil:
			m.metrics.read("failed")
		case r.Shared:
			m.metrics.read("shared")
		default:
			m.metrics.read("single")
		}
		if r.Err != nil && u.Seq > 0 {
			return u, nil // keep serving the last known status
		}
		return u, r.Err
	case <-ctx.Done():
		return flow.Update{}, ctx.Err()
	}
}

// refresh runs in the singleflight goroutine of one interview: reads of the
// same interview never overlap, which keeps its publishes in Seq order.
// It loads a stale interview first, skips a read that is not needed, lets
// another node's read answer, and otherwise calls the upstream and takes
// its answer (see answered). On error it returns the last known status
// with the error.
func (m *Manager) refresh(interviewID string) (flow.Update, error) {
	st, err := m.lock(interviewID)
	if err != nil {
		return flow.Update{}, err
	}
	m.wg.Add(1) // under st.mu with the Manager open: Close waits for it
	defer m.wg.Done()
	st.reading++ // the sweeper keeps st meanwhile
	defer func() { st.mu.Lock(); st.reading--; st.mu.Unlock() }()
	// Stale, or reads fail for want of a session token another node may
	// have shared since: load the shared state first.
	stale := !m.syncedLocked(st) || (st.token == "" && st.failures > 0)
	st.mu.Unlock()
	if stale {
		m.reload(st)
	}

	up := m.clusterUp()
	st.mu.Lock()
	began := time.Now()
	u, skip, err := st.skipLocked(began, m.cfg.Interval, up)
	st.mu.Unlock()
	if skip {
		return u, err
	}
	u, followed, leads := m.followLeader(st)
	if followed {
		return u, nil
	}
	st.mu.Lock()
	token := st.token // after followLeader's wait, which a Register or a reload may have ended with one
	st.mu.Unlock()
	status, err := m.callCapped(interviewID, token)
	return m.answered(st, status, err, began, leads)
}

// skipLocked reports whether a read at now is not needed, and what to
// answer instead: the status, while it is fresh (see freshLocked); the
// last error, while the node backs off with no status known yet.
func (st *interview) skipLocked(now time.Time, interval time.Duration, clusterUp bool) (flow.Update, bool, error) {
	cur := st.curLocked()
	switch {
	case cur.Seq > 0 && st.freshLocked(now, interval, clusterUp):
		return cur, true, nil
	case st.lastErr != nil && now.Before(st.retryAt):
		return flow.Update{}, true, st.lastErr
	}
	return flow.Update{}, false, nil
}

// answered takes the upstream's answer to a read that began at began: a
// status goes down the change path; a session gone upstream ends it; a
// call recoveries cut is no failure; any other error backs off. leads:
// this node took the interview's lease for the read.
func (m *Manager) answered(st *interview, status string, err error, began time.Time, leads bool) (flow.Update, error) {
	st.mu.Lock()
	if leads && st.stop == nil {
		m.releaseIdle(st)
	}
	var se sessionEnder
	switch {
	case errors.Is(err, errCut):
		// Recoveries cut the call each time it was made: the upstream
		// gave no answer, which is no failure of its own. The next read
		// goes out one interval on, as after an answer; nothing backs off.
		st.readAt = time.Now()
		u := st.curLocked()
		st.mu.Unlock()
		m.cfg.Logger.Debug("upstream status read cut by recoveries; read again at the next interval", "interview", st.id)
		if u.Seq > 0 {
			return u, nil
		}
		return flow.Update{}, err
	case errors.As(err, &se) && se.SessionEnded() != "" && (st.curLocked().Seq > 0 || st.token != ""):
		// A session this node knew is gone upstream: its subscribers
		// get its end, and nobody polls it again.
		st.mu.Unlock()
		u, _ := m.change(st, "", se.SessionEnded(), began)
		return u, nil
	case err != nil:
		u := m.failedLocked(st, err)
		st.mu.Unlock()
		return u, err
	}
	if st.failures > 0 {
		m.cfg.Logger.Info("upstream status read recovered", "interview", st.id, "failures", st.failures)
	}
	st.failures, st.retryAt, st.readAt, st.lastErr = 0, time.Time{}, time.Now(), nil
	st.mu.Unlock()
	u, _ := m.change(st, status, "", began)
	return u, nil
}

// releaseIdle gives the lease a one-off read took (a snapshot before Watch,
// a polling client) back one interval later, unless a poller started here
// meanwhile and keeps it. Holding it that long lets the stream that asked
// for the snapshot start its poller without the lease changing hands, and
// other nodes, which wait for the lease to lapse, do not wait on a lease
// nobody uses.
func (m *Manager) releaseIdle(st *interview) {
	m.wg.Add(1) // the caller's fetch is counted: Close has not returned
	go func() {
		defer m.wg.Done()
		t := time.NewTimer(m.cfg.Interval)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.ctx.Done():
		}
		st.mu.Lock()
		idle := st.stop == nil
		st.mu.Unlock()
		if idle {
			m.cluster.Release(st.id)
		}
	}()
}

// followLeader asks the cluster whether another node reads the interview, and if
// so returns the status it shared instead of reading upstream (followed).
// With no status known yet, it waits up to one interval for the other
// node's first read before reading itself. leads reports that this node
// holds the lease; a cluster out of reach means this node reads, alone.
func (m *Manager) followLeader(st *interview) (u flow.Update, followed, leads bool) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	wait, err := m.cluster.Lead(ctx, st.id)
	cancel()
	if err != nil || wait <= 0 {
		return flow.Update{}, false, err == nil
	}
	st.mu.Lock()
	st.following = time.Now().Add(wait)
	u, known := st.curLocked(), st.known
	st.mu.Unlock()
	if u.Seq > 0 {
		return u, true, false
	}
	t := time.NewTimer(m.cfg.Interval)
	defer t.Stop()
	select {
	case <-known:
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.curLocked(), true, false
	case <-t.C:
	case <-m.ctx.Done():
	}
	return flow.Update{}, false, false
}

// callCapped performs one upstream read under the global rate ceiling and
// concurrency cap. Waiting for those and the call itself each get
// CallTimeout, so a wait never eats the time of a call already sent. A
// call a recovery cut (see recover) is made again at once, on a new turn
// under the ceiling, in the slot it holds.
func (m *Manager) callCapped(interviewID, token string) (string, error) {
	wait, cancelWait := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancelWait()
	if err := m.underCeiling(wait); err != nil {
		return "", err
	}
	select {
	case m.sem <- struct{}{}:
	case <-wait.Done():
		return "", fmt.Errorf("poller: waiting for an upstream slot: %w", wait.Err())
	}
	defer func() { <-m.sem }()
	for attempt := 1; ; attempt++ {
		status, cut, err := m.callOnce(interviewID, token)
		switch {
		case cut && attempt == 3:
			return "", fmt.Errorf("%w: %w", errCut, err)
		case !cut:
			return status, err
		}
		retry, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		err = m.underCeiling(retry)
		cancel()
		if err != nil {
			return "", err
		}
	}
}

// underCeiling waits for a turn under the rate ceiling, at most until
// wait ends.
func (m *Manager) underCeiling(wait context.Context) error {
	if m.ceiling == nil {
		return nil
	}
	if err := m.ceiling.Wait(wait); err != nil {
		return fmt.Errorf("poller: waiting under the upstream call ceiling: %w", err)
	}
	return nil
}

// failedLocked records a failed read of st and schedules the next attempt.
// It returns the last known status.
func (m *Manager) failedLocked(st *interview, err error) flow.Update {
	st.failures++
	delay := m.backoff(st.failures)
	var rd retryDelayer
	if errors.As(err, &rd) && rd.RetryDelay() > delay {
		delay = rd.RetryDelay()
	}
	st.retryAt, st.lastErr = time.Now().Add(delay), err
	if st.failures == 1 {
		m.cfg.Logger.Warn("upstream status read failed", "interview", st.id, "err", err, "retry_in", delay)
	} else {
		m.cfg.Logger.Debug("upstream status read failed", "interview", st.id, "err", err, "failures", st.failures, "retry_in", delay)
	}
	return st.curLocked()
}

// backoff is the wait after n consecutive failures: from Interval up to
// BackoffMax (see backoff.Delay).
func (m *Manager) backoff(n int) time.Duration {
	return backoff.Delay(m.cfg.Interval, m.cfg.BackoffMax, n)
}
