package poller

import (
	"cmp"
	"context"
)

// This file keeps a node's memory of its interviews in step with the
// cluster's shared copy (see Cluster): loads, the change feed, resyncs,
// and sharing what the node saw alone while the shared copy was out of
// reach. A node alone (no Config.Cluster) is always in step.

// syncedLocked reports whether st holds what the cluster knows: it was
// loaded since the last resync (always, for a node alone).
func (m *Manager) syncedLocked(st *interview) bool {
	return !m.shared || st.syncGen == m.gen.Load()
}

// tracked returns the state of an interview this node knows or, in a
// cluster, one that another node registered: an interview this node has no
// session token for is loaded first, unless it was loaded since the last
// resync. The state is kept from the sweeper until the caller calls done.
func (m *Manager) tracked(interviewID string) (st *interview, done func(), err error) {
	m.mu.Lock()
	if m.closed.Load() {
		m.mu.Unlock()
		return nil, nil, ErrClosed
	}
	st = m.interviews[interviewID]
	switch {
	case st == nil && !m.shared:
		m.mu.Unlock()
		return nil, nil, ErrUnknownInterview
	case st == nil:
		st = newInterview(interviewID)
		m.interviews[interviewID] = st
	}
	st.mu.Lock()
	st.reading++ // kept until done
	known := st.token != "" || m.syncedLocked(st)
	st.mu.Unlock()
	m.mu.Unlock()
	done = func() { st.mu.Lock(); st.reading--; st.mu.Unlock() }
	if known {
		return st, done, nil
	}

	m.sync(st)

	m.mu.Lock()
	defer m.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reading--
	if st.token == "" && st.cur.Seq == 0 && st.idleLocked() {
		delete(m.interviews, interviewID) // not ours to remember
		return nil, nil, ErrUnknownInterview
	}
	st.reading++
	return st, done, nil
}

// sync loads the interview's shared state, merges what this node missed
// and shares what it saw alone. Out of reach, it leaves st as it is, still
// marked stale.
func (m *Manager) sync(st *interview) {
	if !m.shared {
		return
	}
	// A resync or a missed change during the load leaves st stale.
	gen := m.gen.Load()
	st.mu.Lock()
	marks := st.staleMarks
	st.mu.Unlock()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancel()
	sh, err := m.cluster.Load(ctx, st.id)
	if err != nil {
		return
	}
	st.mu.Lock()
	token := st.token
	if token == "" {
		st.token = sh.Token
	}
	if sh.PushedAt.After(st.pushedAt) {
		st.pushedAt = sh.PushedAt
	}
	st.mu.Unlock()
	if sh.Token == "" && token != "" {
		_ = m.cluster.Share(ctx, st.id, token) // the shared copy lost it
	}
	st.publish.Lock()
	if len(sh.History) == 0 {
		st.mu.Lock()
		st.shared = Update{} // nothing stored (expired, or a Redis that restarted empty)
		st.mu.Unlock()
	}
	m.mergePublishing(st, sh.History, false)
	m.reconcilePublishing(st, sh.History)
	st.publish.Unlock()
	st.mu.Lock()
	if st.staleMarks == marks {
		st.syncGen = gen
	}
	st.mu.Unlock()
}

// reconcilePublishing shares what this node saw alone (while the shared
// copy was out of reach) once it is back. Its latest change keeps its id,
// so clients that got it from this node hold an id every node knows once
// it is stored; the shared copy's later changes were merged before this
// (see sync), so the later observation wins. Exceptions, numbered above
// both: a stored status that takes the flow further (see FlowOrder), or
// that the cluster showed after this node's status (history, the shared
// changes sync loaded; nil when none were), wins over this node's; so
// does a stored end, which keeps the later of the two statuses. This
// node's status wins over a later stored one that would move it back.
// A commit that finds changes stored meanwhile merges them and decides
// again, a few times at most; after that the next sync does.
func (m *Manager) reconcilePublishing(st *interview, history []Update) {
	if !m.shared {
		return
	}
	for attempt := 0; attempt < 3; attempt++ {
		st.mu.Lock()
		cur, shared := st.cur, st.shared
		if cur.Seq == 0 || cur.Seq == shared.Seq {
			st.mu.Unlock()
			return
		}
		floor, endStatus := st.floorLocked(), st.laterStatusLocked(shared.Status)
		st.mu.Unlock()
		next := cur
		switch {
		case shared.Seq > 0 && shared.End != "" && cur.End == "":
			next = Update{InterviewID: st.id, Status: endStatus, End: shared.End}
			next.Seq = nextSeq(max(cur.Seq, shared.Seq, floor), cur.Seq, next)
		case shared.Seq > 0 && (advances(cur.Status, shared.Status) || showedAfter(history, cur.Status, shared.Status)):
			next = Update{InterviewID: st.id, Status: shared.Status, End: cmp.Or(shared.End, cur.End)}
			next.Seq = nextSeq(max(cur.Seq, shared.Seq, floor), cur.Seq, next)
		case shared.Seq > cur.Seq:
			next.Seq = nextSeq(max(shared.Seq, floor), cur.Seq, next)
		}
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		stored, err := m.cluster.Commit(ctx, shared.Seq, next, false)
		cancel()
		switch {
		case err != nil:
			return // still out of reach: tried again at the next sync
		case len(stored) > 0:
			m.mergePublishing(st, stored, false)
			continue
		}
		st.mu.Lock()
		st.shared = next
		st.mu.Unlock()
		m.mergePublishing(st, []Update{next}, false)
		return
	}
	st.mu.Lock()
	st.syncGen = 0 // decided again at the next sync
	st.mu.Unlock()
}

// receive runs in its own goroutine and applies the changes other nodes
// commit.
func (m *Manager) receive(changes <-chan Change) {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			if c.Resync {
				m.resync()
			} else {
				m.received(c)
			}
		}
	}
}

// received applies one change of another node to an interview this node
// serves. A change that does not follow the last one this node knows is
// stored, or that meets changes this node made alone, means the interview
// must be loaded whole instead.
func (m *Manager) received(c Change) {
	st := m.find(c.InterviewID)
	if st == nil {
		return // not served here; loaded when it is
	}
	st.publish.Lock()
	st.mu.Lock()
	follows := c.Prev == st.shared.Seq && st.cur.Seq == st.shared.Seq
	stale := !follows && c.Seq > st.shared.Seq
	active := st.watchers > 0 || st.stop != nil
	if stale && !active {
		st.syncGen = 0 // loaded when next used
		st.staleMarks++
	}
	st.mu.Unlock()
	if follows {
		m.mergePublishing(st, []Update{c.Update}, c.Pushed)
	}
	st.publish.Unlock()
	if stale && active {
		m.sync(st)
	}
}

// resync marks every interview stale, reloads those watched here, so that
// their subscribers get what this node missed, and shares again every
// session token this node holds, in case the shared copy lost them.
func (m *Manager) resync() {
	m.mu.Lock()
	m.gen.Add(1)
	var active, others []*interview
	for _, st := range m.interviews {
		st.mu.Lock()
		switch {
		case st.watchers > 0 || st.stop != nil:
			active = append(active, st)
		case st.token != "":
			others = append(others, st)
		}
		st.mu.Unlock()
	}
	m.mu.Unlock()
	for _, st := range active {
		if m.ctx.Err() != nil {
			return
		}
		m.sync(st)
	}
	for _, st := range others {
		st.mu.Lock()
		token := st.token
		st.mu.Unlock()
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		err := m.cluster.Share(ctx, st.id, token)
		cancel()
		if err != nil {
			return
		}
	}
}

// showedAfter reports whether history shows status later than was, an
// unended status other than it: the cluster moved past was.
func showedAfter(history []Update, was, status string) bool {
	if was == status {
		return false
	}
	seen := false
	for _, u := range history {
		switch {
		case u.End != "":
		case u.Status == was:
			seen = true
		case u.Status == status && seen:
			return true
		}
	}
	return false
}
