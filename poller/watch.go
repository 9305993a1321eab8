package poller

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// Watch adds a watcher to an interview and starts its poller if none runs
// and the flow has not finished. The returned func removes the watcher; it
// may be called more than once.
func (m *Manager) Watch(interviewID string) (unwatch func()) {
	st, err := m.lock(interviewID)
	if err != nil {
		return func() {} // closed: nothing to watch
	}
	defer st.mu.Unlock()
	st.watchers++
	m.savings.watch(1)
	if st.linger != nil {
		st.linger.Stop()
		st.linger = nil
		st.lingerGen++
	}
	m.startLocked(st)
	var once sync.Once
	return func() { once.Do(func() { m.unwatch(st) }) }
}

func (m *Manager) unwatch(st *interview) {
	m.savings.watch(-1)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.watchers--
	if st.watchers > 0 {
		return
	}
	st.usedAt = time.Now()
	if st.stop == nil || m.closed.Load() {
		return
	}
	st.lingerGen++
	gen := st.lingerGen
	st.linger = time.AfterFunc(m.cfg.Linger, func() { st.lingerDone(gen) })
}

// lingerDone runs in the linger timer's goroutine: the last watcher left
// Linger ago, so the poller stops unless a watcher came back.
func (st *interview) lingerDone(gen int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if gen != st.lingerGen || st.watchers > 0 {
		return
	}
	st.linger = nil
	st.stopLocked()
}

// startLocked starts the poller of st unless one runs, the flow finished or
// the Manager is closed.
func (m *Manager) startLocked(st *interview) {
	if m.closed.Load() || st.stop != nil || st.curLocked().Done() {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	st.stop = cancel
	st.pollers++
	m.wg.Add(1)
	go m.poll(ctx, st, st.pollers)
}

// poll is the poller goroutine of one interview, the nth started. It gives
// the interview's lease back when it ends, unless a newer poller runs,
// which holds the lease now. After the flow finished it gives it back one
// interval later: the other nodes hear the end through the cluster a
// little after this node commits it, and a lease free meanwhile would let
// one of them take it and read the finished flow once more.
func (m *Manager) poll(ctx context.Context, st *interview, n int) {
	defer m.wg.Done()
	defer func() {
		st.mu.Lock()
		newer, done := st.pollers != n, st.curLocked().Done()
		st.mu.Unlock()
		switch {
		case newer: // it holds the lease now
		case done:
			m.releaseIdle(st) // no poller starts again: it is released
		default:
			m.cluster.Release(st.id)
		}
	}()
	wake := m.health.woken() // before nextWait: a recovery in between wakes it
	t := time.NewTimer(m.nextWait(st))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			// The upstream came back (see recover): read soon, whatever
			// backoff the timer was set for.
			wake = m.health.woken()
			t.Reset(m.recoveryDelay())
			continue
		case <-t.C:
		}
		if _, err := m.sharedRead(ctx, st.id); errors.Is(err, flow.ErrClosed) {
			return
		}
		wake = m.health.woken()
		t.Reset(m.nextWait(st))
	}
}

// nextWait is the time until the interview's next read is due, plus jitter.
func (m *Manager) nextWait(st *interview) time.Duration {
	st.mu.Lock()
	interval := m.cfg.Interval
	if !st.pushedAt.IsZero() && time.Since(st.pushedAt) < m.cfg.PushSilence {
		interval = m.cfg.PushInterval // the upstream pushes: polling is a safety net
	}
	// A push counts as a read: it is as fresh (see freshLocked). While
	// another node reads, the next look is when its lease may lapse, or
	// one interval on, whichever is first: a look costs nothing while the
	// other node reads, and this node reads within an interval of losing
	// the cluster.
	next := st.readAt.Add(interval)
	following := st.following
	if limit := time.Now().Add(m.cfg.Interval); following.After(limit) {
		following = limit
	}
	for _, t := range []time.Time{st.pushedAt.Add(m.cfg.Interval), st.retryAt, following} {
		if t.After(next) {
			next = t
		}
	}
	st.mu.Unlock()
	return max(time.Until(next), 0) + m.jitter()
}

func (m *Manager) jitter() time.Duration {
	if m.cfg.Jitter == 0 {
		return 0
	}
	return rand.N(time.Duration(float64(m.cfg.Interval)*m.cfg.Jitter) + 1)
}
