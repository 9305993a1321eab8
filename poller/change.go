package poller

import (
	"context"
	"time"
)

// Push applies a status the upstream pushed (its webhook) to a tracked
// interview, with the same sequence numbers and dedupe as polled ones: a
// change seen by both is published once. It reports whether the status
// was new. A push of a status the interview has moved past (a webhook the
// upstream retried late: see interview.movedPastLocked) is ignored;
// StatusExpired ends the session.
// Interviews neither this node nor its cluster knows give
// ErrUnknownInterview.
func (m *Manager) Push(interviewID, status string) (Update, bool, error) {
	st, done, err := m.tracked(interviewID)
	if err != nil {
		return Update{}, false, err
	}
	defer done()
	u, changed := m.apply(st, status, "", time.Time{})
	return u, changed, nil
}

// apply records a status read at readAt (zero for a push), or the end of
// the session (end not ""), and publishes it when it changed. Holding st.publish across the change and its publish
// keeps the publishes of one interview in Seq order, whichever goroutine
// (poll, push or the cluster's feed) makes them. A read that began before
// the last change made elsewhere may be older than it, so it only counts
// when it moves the flow forward. In a cluster the change is committed to
// the shared copy first, on top of the last change this node knows is
// stored there; a commit that finds changes this node missed merges them
// and decides again.
func (m *Manager) apply(st *interview, status, end string, readAt time.Time) (Update, bool) {
	if status == StatusExpired {
		status, end = "", EndExpired // the upstream's flow timeout ran out
	}
	st.publish.Lock()
	defer st.publish.Unlock()
	pushed := readAt.IsZero()
	m.reconcilePublishing(st, nil)
	for attempt := 0; ; attempt++ {
		st.mu.Lock()
		if pushed {
			st.pushedAt, st.usedAt = time.Now(), time.Now()
		}
		cur, base := st.cur, st.shared.Seq
		if !st.changesLocked(status, end, readAt) {
			st.mu.Unlock()
			return cur, false
		}
		next := Update{InterviewID: st.id, Status: status, End: end}
		if end != "" {
			next.Status = cur.Status // the last status seen stays
		}
		next.Seq = nextSeq(max(cur.Seq, base, st.floorLocked()), cur.Seq, next)
		st.mu.Unlock()

		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		stored, err := m.cluster.Commit(ctx, base, next, pushed)
		cancel()
		if err == nil && len(stored) > 0 {
			// Another node committed first: take its changes, then decide
			// again against them, a few times at most.
			m.mergePublishing(st, stored, false)
			if attempt < 3 {
				continue
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			return st.cur, false
		}
		st.mu.Lock()
		if err == nil {
			st.shared = next
		} else {
			// The shared copy is out of reach, or refused the change: this
			// node goes on alone, and shares what it saw once it syncs.
			st.syncGen = 0
		}
		st.recordLocked(next)
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

// mergePublishing takes changes committed elsewhere (by another node, or
// before this node loaded the interview), oldest first, and publishes
// those it did not have, in order. A change that only renumbers the
// current status (see reconcilePublishing) is recorded but not published:
// subscribers never get the same status twice in a row.
func (m *Manager) mergePublishing(st *interview, changes []Update, pushed bool) {
	var fresh []Update
	st.mu.Lock()
	alone := st.cur.Seq != st.shared.Seq // cur was numbered alone: reconcilePublishing decides
	for _, u := range changes {
		u.InterviewID = st.id
		st.shared = u // the stored tail, even when older than what this node thought (a Redis rolled back)
		if u.Seq <= st.cur.Seq || (alone && u.End == "" && st.movedPastLocked(u.Status)) || (st.cur.End != "" && u.End == "") {
			continue // older, a status this node moved past, or an ended session going on
		}
		if u.End != "" {
			u.Status = st.laterStatusLocked(u.Status) // an end never moves the status shown back
		}
		same := u.Status == st.cur.Status && u.End == st.cur.End
		st.recordLocked(u)
		if !same {
			fresh = append(fresh, u)
		}
	}
	if len(fresh) > 0 {
		st.external = time.Now()
		if pushed {
			st.pushedAt = st.external
		}
	}
	st.mu.Unlock()
	if !m.closed.Load() {
		for _, u := range fresh {
			m.pub.Publish(u)
		}
	}
}
