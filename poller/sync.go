package poller

import (
	"context"

	"github.com/pushgate/pushgate/poller/flow"
)

// This file keeps a node's memory of its interviews in step with the
// cluster's shared copy (see Cluster): loads, the change feed, reloads,
// and sharing what the node saw alone while the shared copy was out of
// reach. A node alone (no Config.Cluster) is always in step.

// syncedLocked reports whether st holds what the cluster knows: it was
// loaded since the last reloadAll (always, for a node alone: see New).
func (m *Manager) syncedLocked(st *interview) bool {
	return st.syncGen == m.gen.Load()
}

// tracked returns the state of an interview this node knows or, in a
// cluster, one that another node registered: an interview this node has no
// session token for is loaded first, unless it was loaded since the last
// reloadAll. The state is kept from the sweeper until the caller calls
// done. An interview this node creates here is always loaded first.
func (m *Manager) tracked(interviewID string) (st *interview, done func(), err error) {
	m.mu.Lock()
	if m.closed.Load() {
		m.mu.Unlock()
		return nil, nil, flow.ErrClosed
	}
	st = m.interviews[interviewID]
	created := st == nil
	if created {
		st = newInterview(interviewID)
		m.interviews[interviewID] = st
	}
	st.mu.Lock()
	st.reading++ // kept until done
	known := st.token != "" || (m.syncedLocked(st) && !created)
	st.mu.Unlock()
	m.mu.Unlock()
	done = func() { st.mu.Lock(); st.reading--; st.mu.Unlock() }
	if known {
		return st, done, nil
	}

	m.reload(st)

	m.mu.Lock()
	defer m.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reading--
	if st.token == "" && st.curLocked().Seq == 0 && st.idleLocked() {
		delete(m.interviews, interviewID) // not ours to remember
		return nil, nil, flow.ErrUnknownInterview
	}
	st.reading++
	return st, done, nil
}

// reload loads the interview's shared state, takes what this node missed
// and shares what it saw alone. Out of reach, it leaves st as it is, still
// marked stale.
func (m *Manager) reload(st *interview) {
	// A reloadAll or a missed change during the load leaves st stale.
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
	m.takeWithPublishing(st, false, func(l *flow.Log) ([]flow.Update, []flow.Update) { return l.Load(sh.History) })
	m.shareAlonePublishing(st, sh.History)
	st.publish.Unlock()
	st.mu.Lock()
	if st.staleMarks == marks {
		st.syncGen = gen
	}
	st.mu.Unlock()
}

// shareAlonePublishing shares what this node saw alone (while the shared
// copy was out of reach) once it is back: the change flow.Log.Reconcile
// decides is committed and taken. history is the shared copy reload
// loaded (nil when none was). A commit that finds changes stored meanwhile
// takes them and decides again, a few times at most; after that the next
// reload does.
func (m *Manager) shareAlonePublishing(st *interview, history []flow.Update) {
	for attempt := 0; attempt < 3; attempt++ {
		st.mu.Lock()
		next, base, ok := st.log.Reconcile(history, flow.Now())
		st.mu.Unlock()
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		stored, err := m.cluster.Commit(ctx, base, next, false)
		cancel()
		switch {
		case err != nil:
			return // still out of reach: tried again at the next reload
		case len(stored) > 0:
			m.takePublishing(st, stored, false)
			continue
		}
		m.takeWithPublishing(st, false, func(l *flow.Log) ([]flow.Update, []flow.Update) { return l.Shared(next) })
		return
	}
	st.mu.Lock()
	st.syncGen = 0 // decided again at the next reload
	st.mu.Unlock()
}

// feed runs in its own goroutine and takes the changes other nodes
// commit.
func (m *Manager) feed(changes <-chan Change) {
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
				m.reloadAll()
			} else {
				m.onChange(c)
			}
		}
	}
}

// onChange takes one change of another node to an interview this node
// serves. A change that does not follow the last one this node knows is
// stored, or that meets changes this node made alone, means the interview
// must be loaded whole instead.
func (m *Manager) onChange(c Change) {
	st := m.find(c.InterviewID)
	if st == nil {
		return // not served here; loaded when it is
	}
	st.publish.Lock()
	st.mu.Lock()
	follows := st.log.Follows(c.Prev)
	stale := !follows && c.Seq > st.log.Stored().Seq
	active := st.watchers > 0 || st.stop != nil
	if stale && !active {
		st.syncGen = 0 // loaded when next used
		st.staleMarks++
	}
	st.mu.Unlock()
	if follows {
		m.takePublishing(st, []flow.Update{c.Update}, c.Pushed)
	}
	st.publish.Unlock()
	if stale && active {
		m.reload(st)
	}
}

// reloadAll marks every interview stale, reloads those watched here, so that
// their subscribers get what this node missed, and shares again every
// session token this node holds, in case the shared copy lost them.
func (m *Manager) reloadAll() {
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
		m.reload(st)
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
