package poller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/pushgate/pushgate/poller/flow"
)

// Source reads an interview's status from the upstream API. sessionToken is
// whatever Register stored for the interview ("" when none was).
type Source interface {
	Status(ctx context.Context, interviewID, sessionToken string) (string, error)
}

// HealthChecker is an optional interface of a Source: Healthy says why the
// upstream cannot serve now, nil when it can. See Manager.Ready.
type HealthChecker interface {
	Healthy() error
}

// Observer is told of the changes this node commits: a status it read
// or was pushed, or the end of a session. In a cluster, each change is
// observed once, on the node that committed it (a change merged from
// another node is not); while a node acts alone (its cluster out of
// reach), the changes it numbers alone are. Observed runs in the
// goroutine that made the change, with the interview held, so the
// changes of one interview are observed in order; it must not block for
// long. prev is the status before the change (Seq 0: none).
type Observer interface {
	Observed(prev, next flow.Update)
}

// Publisher receives every status change, in Seq order per interview.
// Publish is called from the goroutine doing the read and must not block.
type Publisher interface {
	Publish(u flow.Update)
}

// Manager runs the shared pollers. Its methods are safe for concurrent use.
//
// Goroutines: one per running poller, one per upstream read in flight (the
// singleflight call), one sweeper, one prober and one per probe in flight
// when the Source is a Prober (probe.go), one per lease held an interval
// after a one-off read or the end of a flow (releaseIdle) and, in a
// cluster, one taking the other nodes' changes (feed); all are counted
// in wg and end with Close. A goroutine is counted (wg.Add) only while
// the interview it serves is locked and the Manager was found open, or by
// a goroutine that is itself counted (releaseIdle, from a poller's or a
// read's end: the count cannot be zero then), so Close, which marks
// itself closed and then locks every interview once, waits for all of
// them.
type Manager struct {
	src     Source
	pub     Publisher
	cfg     Config
	cluster Cluster // alone{} when Config.Cluster is nil

	reads   singleflight.Group // upstream status reads, keyed by interview id
	sem     chan struct{}      // caps upstream reads in flight
	ceiling *rate.Limiter      // caps upstream reads per second; nil when none
	metrics *metrics
	savings savings // calls made against per-browser polling, for the metrics
	health  health  // the upstream as a whole: probes and recoveries (recover.go)

	ctx    context.Context // ends with Close; parent of pollers and reads
	cancel context.CancelFunc
	wg     sync.WaitGroup
	gen    atomic.Uint64 // grows with every reloadAll; an interview loaded before it is stale
	closed atomic.Bool   // set under mu, read anywhere

	mu         sync.RWMutex // protects interviews, and orders closed with lookups
	interviews map[string]*interview
}

// New returns a Manager that reads statuses from src and reports changes to
// pub. Close must be called to stop its goroutines.
func New(src Source, pub Publisher, cfg Config) (*Manager, error) {
	if src == nil || pub == nil {
		return nil, errors.New("poller: Source and Publisher are required")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		src:        src,
		pub:        pub,
		cfg:        cfg,
		cluster:    cfg.Cluster,
		sem:        make(chan struct{}, cfg.MaxConcurrent),
		ctx:        ctx,
		cancel:     cancel,
		interviews: make(map[string]*interview),
	}
	m.health.init(ctx)
	m.savings.interval = cfg.Interval
	m.ceiling = cfg.Ceiling
	var err error
	if m.metrics, err = newMetrics(cfg.Metrics, m); err != nil {
		cancel()
		return nil, err
	}
	if m.cluster == nil {
		m.cluster = alone{} // it holds nothing to load: every interview is in step from the start
	} else {
		m.gen.Store(1) // every interview starts stale: the cluster may know it
	}
	m.wg.Add(1)
	go m.sweep()
	if p, ok := src.(Prober); ok {
		m.wg.Add(1)
		go m.watchUpstream(p)
	}
	if ch := m.cluster.Changes(); ch != nil {
		m.wg.Add(1)
		go m.feed(ch)
	}
	return m, nil
}

// NewCeiling returns a limiter of perSecond upstream calls, with a small
// burst: a recovery's retries are spread, not released at once.
func NewCeiling(perSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond/10)))
}

// Close stops every poller and waits for reads in flight to end.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed.Load() {
		m.mu.Unlock()
		return
	}
	m.closed.Store(true)
	for _, st := range m.interviews {
		st.mu.Lock()
		if st.linger != nil {
			st.linger.Stop()
			st.linger = nil
		}
		st.stop = nil // cancelled below through m.ctx
		st.mu.Unlock()
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// Ready reports why the upstream cannot serve now, when the Source can
// tell (see HealthChecker); nil means ready. With a Source that is also a
// Prober, it follows the upstream without traffic: see watchUpstream.
func (m *Manager) Ready() error {
	if h, ok := m.src.(HealthChecker); ok {
		return h.Healthy()
	}
	return nil
}

// Degraded says why this node serves in a degraded mode, when its Cluster
// can tell (see DegradedReporter); "" means it does not.
func (m *Manager) Degraded() string {
	if d, ok := m.cluster.(DegradedReporter); ok {
		return d.Degraded()
	}
	return ""
}

// clusterUp reports whether the cluster is reachable, when it can tell
// (see DegradedReporter): another node's lease counts only then. It asks
// the cluster: never called with an interview's mu held.
func (m *Manager) clusterUp() bool { return m.Degraded() == "" }

// Register records the upstream session token of an interview, so that its
// status can be read with it, on this node and, in a cluster, on all.
func (m *Manager) Register(interviewID, sessionToken string) {
	st, err := m.lock(interviewID)
	if err != nil {
		return // closed
	}
	st.token, st.usedAt = sessionToken, time.Now()
	st.mu.Unlock()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancel()
	_ = m.cluster.Share(ctx, interviewID, sessionToken) // unreachable: this node still has it
}

// SessionToken returns the upstream session token Register stored for the
// interview, on any node of a cluster ("" when none).
func (m *Manager) SessionToken(interviewID string) string {
	st, done, err := m.tracked(interviewID)
	if err != nil {
		return ""
	}
	defer done()
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.token
}

// Last returns the last known status without calling upstream. It takes
// no interview lock: it runs for every event delivered to every subscriber.
func (m *Manager) Last(interviewID string) (flow.Update, bool) {
	if st := m.find(interviewID); st != nil {
		if u := st.last.Load(); u != nil {
			return *u, true
		}
	}
	return flow.Update{}, false
}

// Since returns what a client holding the event id last must get, oldest
// first, without calling upstream: on a first connect (last 0) the
// remembered changes (the last flow.HistoryLen); after an id this node
// remembers, the changes after it; after any other id, the current status
// when it is news to that client and not behind what it shows. It never
// returns an id at or below last. See flow.Log.Since.
func (m *Manager) Since(interviewID string, last uint64) []flow.Update {
	if st := m.find(interviewID); st != nil {
		return st.since(last)
	}
	return nil
}

// Gate decides what a client holding the event id held gets of a change
// of the interview numbered seq, published while its stream is open: the
// id to send it under, or ok false when it is not news to that client.
// See flow.Gate, and flow.Log.Gate for what this node's memory adds.
func (m *Manager) Gate(interviewID string, held, seq uint64) (send uint64, ok bool) {
	if st := m.find(interviewID); st != nil {
		return st.gate(held, seq)
	}
	return flow.Gate(held, seq)
}

// find returns the state of an interview, nil when there is none.
func (m *Manager) find(interviewID string) *interview {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.interviews[interviewID]
}

// lock returns the state of an interview, created when missing, with its mu
// held; flow.ErrClosed once the Manager is closed. Holding the state's mu before
// Manager.mu is released keeps the sweeper from dropping it in between.
func (m *Manager) lock(interviewID string) (*interview, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return nil, flow.ErrClosed
	}
	st := m.interviews[interviewID]
	if st == nil {
		st = newInterview(interviewID)
		m.interviews[interviewID] = st
	}
	st.mu.Lock()
	return st, nil
}

// count returns how many interviews match, for the metrics' gauges. match
// is called with the interview's mu held.
func (m *Manager) count(match func(*interview) bool) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, st := range m.interviews {
		st.mu.Lock()
		if match(st) {
			n++
		}
		st.mu.Unlock()
	}
	return n
}

// sweep forgets interviews nobody has used for Retention.
func (m *Manager) sweep() {
	defer m.wg.Done()
	m.tick(min(max(m.cfg.Retention/4, time.Second), time.Minute), func(now time.Time) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for id, st := range m.interviews {
			st.mu.Lock()
			if st.idleLocked() && now.Sub(st.usedAt) > m.cfg.Retention {
				delete(m.interviews, id)
			}
			st.mu.Unlock()
		}
	})
}

// tick calls f every period, in the calling goroutine, until Close.
func (m *Manager) tick(every time.Duration, f func(now time.Time)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}
