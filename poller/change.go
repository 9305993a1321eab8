package poller

import (
	"context"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// This file is the change path (drawn in doc.go): a status becomes a
// change of the interview's log, is stored in the cluster's shared copy,
// and is published to this node's subscribers. Holding an interview's
// publish from a change to its publish keeps the publishes of one
// interview in Seq order, whichever goroutine (a poller, a push or the
// cluster's feed) makes them.

// Push applies a status the upstream pushed (its webhook) to a tracked
// interview, with the same numbering and dedupe as read ones: a change
// seen by both is published once. It reports whether the status was new.
// A push of a status the interview has moved past (a webhook the upstream
// retried late) is ignored; flow.StatusExpired ends the session.
// Interviews neither this node nor its cluster knows give
// ErrUnknownInterview.
func (m *Manager) Push(interviewID, status string) (flow.Update, bool, error) {
	st, done, err := m.tracked(interviewID)
	if err != nil {
		return flow.Update{}, false, err
	}
	defer done()
	u, changed := m.change(st, status, "", time.Time{})
	return u, changed, nil
}

// change records a status read at readAt (zero for a push), or the end of
// the session (end not ""), and publishes it when it changed the
// interview (see flow.Log.Next). The change is committed to the shared
// copy first, on top of the last change this node knows is stored there;
// a commit that finds changes this node missed takes them and decides
// again. A shared copy out of reach leaves this node numbering alone,
// until a reload shares what it saw.
func (m *Manager) change(st *interview, status, end string, readAt time.Time) (flow.Update, bool) {
	if status == flow.StatusExpired {
		status, end = "", flow.EndExpired // the upstream's flow timeout ran out
	}
	st.publish.Lock()
	defer st.publish.Unlock()
	pushed := readAt.IsZero()
	m.shareAlonePublishing(st, nil)
	for attempt := 0; ; attempt++ {
		st.mu.Lock()
		if pushed {
			st.pushedAt, st.usedAt = time.Now(), time.Now()
		}
		cur, base := st.curLocked(), st.log.Stored().Seq
		// A change made elsewhere (a push, another node) after this read
		// began may be newer than its answer.
		overtaken := !pushed && !readAt.After(st.external)
		next, ok := st.log.Next(status, end, overtaken, flow.Now())
		st.mu.Unlock()
		if !ok {
			return cur, false
		}

		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		stored, err := m.cluster.Commit(ctx, base, next, pushed)
		cancel()
		if err == nil && len(stored) > 0 {
			// Another node committed first: take its changes, then decide
			// again against them, a few times at most.
			m.takePublishing(st, stored, false)
			if attempt < 3 {
				continue
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			return st.curLocked(), false
		}
		st.mu.Lock()
		if err != nil {
			st.syncGen = 0 // out of reach, or refused: shared at the next reload
		}
		st.log.Append(next, err == nil)
		st.recordedLocked(next)
		if pushed {
			st.external = time.Now() // reads that began before it may be older
		}
		st.mu.Unlock()
		if !m.closed.Load() {
			m.metrics.changed()
			if m.cfg.Observer != nil {
				m.cfg.Observer.Observed(cur, next)
			}
			m.pub.Publish(next)
		}
		return next, true
	}
}

// takePublishing takes changes stored elsewhere (by another node, or
// before this node loaded the interview), oldest first, and publishes
// those that are news, in order (see flow.Log.Merge).
func (m *Manager) takePublishing(st *interview, changes []flow.Update, pushed bool) {
	m.takeWithPublishing(st, pushed, func(l *flow.Log) ([]flow.Update, []flow.Update) { return l.Merge(changes) })
}

// takeWithPublishing runs take, which takes changes of the shared copy
// into the interview's log, follows what it recorded, and publishes the
// news, in order. pushed: the upstream pushed them.
func (m *Manager) takeWithPublishing(st *interview, pushed bool, take func(*flow.Log) (recorded, news []flow.Update)) {
	st.mu.Lock()
	recorded, news := take(&st.log)
	st.recordedLocked(recorded...)
	if len(news) > 0 {
		st.external = time.Now()
		if pushed {
			st.pushedAt = st.external
		}
	}
	st.mu.Unlock()
	if m.closed.Load() {
		return
	}
	for _, u := range news {
		m.pub.Publish(u)
	}
}
