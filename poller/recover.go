package poller

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// idleCloser is implemented by Sources that keep connections to the
// upstream (upstream.Client): a recovery closes the idle ones.
type idleCloser interface {
	CloseIdleConnections()
}

// health is what the Manager knows of the upstream as a whole, apart from
// any interview: the verdict of its last probe, when its status calls last
// ended, and the generation of calls a recovery cancels. The zero value is
// not ready: New calls init.
type health struct {
	mu      sync.Mutex          // protects every field up to lastEnd
	calls   context.Context     // parent of the status calls and probes in flight; cancelled at a recovery
	cut     context.CancelFunc  // cancels calls
	down    bool                // the last probe failed: the next that succeeds is a recovery
	probing map[int64]time.Time // when each probe in flight was sent, by number
	probes  int64               // probes sent; numbers them
	wake    chan struct{}       // closed at a recovery, then replaced

	lastEnd atomic.Int64 // UnixNano when a status call last ended; 0: never
	failed  atomic.Bool  // a status call failed since the prober last looked
}

// init starts the first generation of calls, under ctx (the Manager's).
func (h *health) init(ctx context.Context) {
	h.calls, h.cut = context.WithCancel(ctx)
	h.wake = make(chan struct{})
	h.probing = make(map[int64]time.Time)
}

// sent records a probe sent at now; done, called when it ended, forgets
// it. A probe counts from the moment it got its turn under the ceiling,
// not while it waits for it.
func (h *health) sent(now time.Time) (done func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probes++
	n := h.probes
	h.probing[n] = now
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.probing, n)
	}
}

// hangingLocked reports whether a probe sent before sent, and before
// since, is still in flight: the upstream left it unanswered for a long
// while, and answered a later one.
func (h *health) hangingLocked(sent, since time.Time) bool {
	for _, t := range h.probing {
		if t.Before(sent) && t.Before(since) {
			return true
		}
	}
	return false
}

// generation returns the context the next call or probe runs under: a
// recovery cancels it.
func (h *health) generation() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// woken returns a channel closed at the next recovery. Pollers take it
// before they compute their next wait, so none misses a recovery.
func (h *health) woken() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wake
}

// ended records a status call that ended, cut ones aside.
func (h *health) ended(err error) {
	h.lastEnd.Store(time.Now().UnixNano())
	if err != nil {
		h.failed.Store(true)
	}
}

// due reports whether the prober should probe at now: the last probe
// failed (the probe is how the node sees the upstream back), Healthy
// reports the upstream unavailable, a status call failed since the last
// look, or no status call ended within two intervals (an idle node, which
// would otherwise not notice the upstream going away).
func (h *health) due(unhealthy bool, now time.Time, interval time.Duration) bool {
	failed := h.failed.Swap(false)
	h.mu.Lock()
	down := h.down
	h.mu.Unlock()
	idle := now.Sub(time.Unix(0, h.lastEnd.Load())) >= 2*interval
	return down || unhealthy || failed || idle
}

// probed takes the verdict of a probe sent at sent. A success is a
// recovery when the last probe failed, or when a probe sent earlier still
// hangs, unanswered for two probe intervals or half CallTimeout, whichever
// is longer: the upstream is back from an outage shorter than CallTimeout,
// and calls sent during it may hang too. Of probes that end together, one
// sees the recovery.
func (m *Manager) probed(sent time.Time, err error) {
	h := &m.health
	h.mu.Lock()
	was := h.down
	h.down = err != nil
	// A probe unanswered for a while, not one a lost packet delayed.
	hung := time.Now().Add(-max(2*m.cfg.ProbeInterval, m.cfg.CallTimeout/2))
	back := err == nil && (was || h.hangingLocked(sent, hung))
	h.mu.Unlock()
	switch {
	case err != nil && !was:
		m.cfg.Logger.Warn("upstream probe failed: probing every interval until it answers", "err", err, "interval", m.cfg.ProbeInterval)
	case back:
		m.recover()
	}
}

// recover runs when a probe sees the upstream back after a failed probe,
// in the prober's goroutine:
//  1. the Source's idle connections are closed, so the next calls dial
//     afresh rather than reuse one to a peer that may be gone;
//  2. the status calls and probes in flight are cancelled: they began
//     while the upstream failed, and one stuck on a dead connection would
//     wait out its CallTimeout. call asks each again at once;
//  3. every interview backing off after failed reads may read again,
//     unless the upstream asked it to wait (Retry-After);
//  4. the pollers are woken, and each reads at a random point of the
//     next half interval: every watched interview is read within one
//     interval, spread out, under the ceiling and MaxConcurrent as usual.
func (m *Manager) recover() {
	if c, ok := m.src.(idleCloser); ok {
		c.CloseIdleConnections()
	}
	h := &m.health
	h.mu.Lock()
	cut := h.cut
	h.calls, h.cut = context.WithCancel(m.ctx)
	wake := h.wake
	h.wake = make(chan struct{})
	h.mu.Unlock()
	cut()
	lifted := m.liftBackoffs()
	close(wake)
	m.metrics.recovered()
	m.cfg.Logger.Info("upstream back: reading every interview now", "backoffs_lifted", lifted)
}

// liftBackoffs lets every interview backing off after failed reads read
// again now, unless the upstream asked it to wait. It returns how many.
func (m *Manager) liftBackoffs() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	now, n := time.Now(), 0
	for _, st := range m.interviews {
		st.mu.Lock()
		if st.failures > 0 && now.Before(st.retryAt) && !askedToWait(st.lastErr) {
			st.retryAt = time.Time{}
			n++
		}
		st.mu.Unlock()
	}
	return n
}

// askedToWait reports whether err carries the upstream's Retry-After.
func askedToWait(err error) bool {
	var rd retryDelayer
	return errors.As(err, &rd) && rd.RetryDelay() > 0
}

// recoveryDelay is when a poller woken by a recovery reads: at a random
// point of the next half interval, so that the interviews do not all ask
// at once.
func (m *Manager) recoveryDelay() time.Duration {
	return rand.N(m.cfg.Interval/2 + 1)
}

// callOnce makes one status call under CallTimeout, in the current
// generation of calls. cut reports that a recovery cancelled it: its
// error says nothing of the upstream, and the call is to be made again.
func (m *Manager) callOnce(interviewID, token string) (status string, cut bool, err error) {
	calls := m.health.generation()
	ctx, cancel := context.WithTimeout(calls, m.cfg.CallTimeout)
	defer cancel()
	m.savings.calls.Add(1)
	status, err = m.src.Status(ctx, interviewID, token)
	if err != nil && calls.Err() != nil && m.ctx.Err() == nil {
		return "", true, err
	}
	m.health.ended(err)
	return status, false, err
}
