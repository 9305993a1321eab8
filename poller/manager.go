package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// StatusFinished is the status that ends the user's flow: the page closes
// the iframe on it and the poller stops.
const StatusFinished = "ONBOARDING_FINISHED"

// historyLen is how many changes per interview Since remembers.
const historyLen = 16

// Errors of the Manager.
var (
	ErrClosed           = errors.New("poller: closed")
	ErrUnknownInterview = errors.New("poller: unknown interview")
)

// Update is one observed status of an interview. Seq grows with every
// change (see nextSeq), so it orders the changes of one interview and
// serves as the SSE event id, the same on every node of a cluster.
type Update struct {
	InterviewID string `json:"interviewId"`
	Status      string `json:"onboardingStatus"`
	Seq         uint64 `json:"seq"`
}

// Finished reports whether u ends the user's flow: ONBOARDING_FINISHED,
// or a manual review decided after it.
func (u Update) Finished() bool {
	r, ok := flowRank[u.Status]
	return ok && r >= flowRank[StatusFinished]
}

// Source reads an interview's status from the upstream API. sessionToken is
// whatever Register stored for the interview ("" when none was).
type Source interface {
	Status(ctx context.Context, interviewID, sessionToken string) (string, error)
}

// Publisher receives every status change, in Seq order per interview.
// Publish is called from the goroutine doing the read and must not block.
type Publisher interface {
	Publish(u Update)
}

// retryDelayer is implemented by source errors that carry the upstream's
// Retry-After.
type retryDelayer interface {
	RetryDelay() time.Duration
}

// Config tunes a Manager. The zero value of every field selects its default.
type Config struct {
	// Interval is the time between two upstream reads of one interview.
	// Zero means 1s.
	Interval time.Duration
	// Jitter is the largest random delay added to each wait, as a fraction
	// of Interval, so that many interviews do not tick together. Zero means
	// 0.1; a negative value turns jitter off.
	Jitter float64
	// Linger is how long a poller keeps running after its last watcher
	// left. Zero means 10s.
	Linger time.Duration
	// CallTimeout bounds each upstream read, independent of the callers
	// waiting for it. Zero means 5s.
	CallTimeout time.Duration
	// MaxConcurrent caps upstream reads in flight across all interviews.
	// Zero means 64.
	MaxConcurrent int
	// BackoffMax caps the exponential backoff after failed reads. Zero
	// means 30s.
	BackoffMax time.Duration
	// Retention is how long the state of an interview nobody watches is
	// kept (its last status, sequence number and session token). Zero
	// means 1h.
	Retention time.Duration
	// PushInterval is the poll interval of an interview whose changes the
	// upstream pushes (Push, from its webhook): polling is then only a
	// safety net. Zero means 15s.
	PushInterval time.Duration
	// PushSilence is how long after the last push an interview is polled
	// at PushInterval; after it, polling returns to Interval. Zero means 1m.
	PushSilence time.Duration
	// MaxCallsPerSecond is a ceiling on upstream status calls per second
	// across all interviews, so an outage's retries or a recovery cannot
	// flood the upstream. Zero means no ceiling.
	MaxCallsPerSecond float64
	// Cluster shares interviews with the other gateway nodes: leases so
	// that one node reads each interview, the shared status and its
	// changes. Nil means this node is alone.
	Cluster Cluster
	// Metrics registers the Manager's Prometheus collectors. Nil records
	// no metrics.
	Metrics prometheus.Registerer
	// Logger receives read failures and recoveries. Nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.Jitter < 0 {
		c.Jitter = 0
	}
	if c.Linger == 0 {
		c.Linger = 10 * time.Second
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 64
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.Retention == 0 {
		c.Retention = time.Hour
	}
	if c.PushInterval == 0 {
		c.PushInterval = 15 * time.Second
	}
	if c.PushSilence == 0 {
		c.PushSilence = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Interval < 0, c.Linger < 0, c.CallTimeout < 0, c.BackoffMax < 0, c.Retention < 0, c.PushInterval < 0, c.PushSilence < 0:
		return errors.New("poller: durations must not be negative")
	case c.MaxConcurrent < 0:
		return errors.New("poller: MaxConcurrent must not be negative")
	case c.MaxCallsPerSecond < 0:
		return errors.New("poller: MaxCallsPerSecond must not be negative")
	case c.Jitter > 1:
		return fmt.Errorf("poller: Jitter %v is above 1", c.Jitter)
	}
	return nil
}

// Manager runs the shared pollers. Its methods are safe for concurrent use.
//
// Goroutines: one per running poller, one per upstream read in flight (the
// singleflight call), one sweeper and, in a cluster, one receiving the
// other nodes' changes; all are counted in wg and end with Close.
type Manager struct {
	src     Source
	pub     Publisher
	cfg     Config
	cluster Cluster // alone{} when Config.Cluster is nil
	shared  bool    // Config.Cluster is set

	reads   singleflight.Group // upstream status reads, keyed by interview id
	sem     chan struct{}      // caps upstream reads in flight
	ceiling *rate.Limiter      // caps upstream reads per second; nil when none
	metrics *metrics

	ctx    context.Context // ends with Close; parent of pollers and reads
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex // protects closed, gen, interviews and every field of each interview
	closed     bool
	gen        uint64 // grows with every resync; an interview loaded before it is stale
	interviews map[string]*interview
}

// interview is the state of one interview. All fields but publish are
// guarded by Manager.mu. Lock order: publish, then Manager.mu.
type interview struct {
	publish    sync.Mutex // held from a change to its publish (see apply)
	id         string
	token      string        // upstream session token, "" when unknown
	cur        Update        // last known status; Seq 0 means none yet
	history    []Update      // the last historyLen changes, oldest first, ending with cur
	readAt     time.Time     // last successful upstream read
	retryAt    time.Time     // no upstream read before this (backoff, Retry-After)
	lastErr    error         // the last read's error while it keeps failing
	reading    int           // fetches in flight; the sweeper keeps the state meanwhile
	pushedAt   time.Time     // last status the upstream pushed; zero when none
	external   time.Time     // last change made by a push or another node
	following  time.Time     // another node reads upstream until then
	syncGen    uint64        // Manager.gen when last loaded from the cluster; 0: never
	staleMarks int           // times the feed showed st stale; a load racing one does not count
	shared     Update        // the last change known stored in the cluster; Seq 0: none
	known      chan struct{} // closed once a status is known
	failures   int           // consecutive failed reads
	watchers   int
	stop       context.CancelFunc // stops the running poller; nil when none runs
	linger     *time.Timer        // pending stop after the last watcher left
	lingerGen  int                // tells a stale linger callback from the current one
	usedAt     time.Time          // last Register, Current or unwatch; drives Retention
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
		shared:     cfg.Cluster != nil,
		gen:        1,
		sem:        make(chan struct{}, cfg.MaxConcurrent),
		ctx:        ctx,
		cancel:     cancel,
		interviews: make(map[string]*interview),
	}
	if cfg.MaxCallsPerSecond > 0 {
		// A small burst: a recovery's retries are spread, not released at once.
		m.ceiling = rate.NewLimiter(rate.Limit(cfg.MaxCallsPerSecond), max(1, int(cfg.MaxCallsPerSecond/10)))
	}
	var err error
	if m.metrics, err = newMetrics(cfg.Metrics, m); err != nil {
		cancel()
		return nil, err
	}
	if !m.shared {
		m.cluster = alone{}
	}
	m.wg.Add(1)
	go m.sweep()
	if ch := m.cluster.Changes(); ch != nil {
		m.wg.Add(1)
		go m.receive(ch)
	}
	return m, nil
}

// Close stops every poller and waits for reads in flight to end.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	for _, st := range m.interviews {
		if st.linger != nil {
			st.linger.Stop()
			st.linger = nil
		}
		st.stop = nil // cancelled below through m.ctx
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// Register records the upstream session token of an interview, so that its
// status can be read with it, on this node and, in a cluster, on all.
func (m *Manager) Register(interviewID, sessionToken string) {
	m.mu.Lock()
	st := m.stateLocked(interviewID)
	st.token, st.usedAt = sessionToken, time.Now()
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancel()
	_ = m.cluster.Share(ctx, interviewID, sessionToken) // unreachable: this node still has it
}

// SessionToken returns the upstream session token Register stored for the
// interview, on any node of a cluster ("" when none).
func (m *Manager) SessionToken(interviewID string) string {
	st, err := m.tracked(interviewID)
	if err != nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return st.token
}

// Watch adds a watcher to an interview and starts its poller if none runs
// and the flow has not finished. The returned func removes the watcher; it
// may be called more than once.
func (m *Manager) Watch(interviewID string) (unwatch func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stateLocked(interviewID)
	st.watchers++
	if st.linger != nil {
		st.linger.Stop()
		st.linger = nil
		st.lingerGen++
	}
	m.startLocked(st)
	var once sync.Once
	return func() { once.Do(func() { m.unwatch(st) }) }
}

// Watchers returns how many watchers an interview has.
func (m *Manager) Watchers(interviewID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.interviews[interviewID]; st != nil {
		return st.watchers
	}
	return 0
}

// Polling reports whether a poller runs for the interview.
func (m *Manager) Polling(interviewID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.interviews[interviewID]
	return st != nil && st.stop != nil
}

// Last returns the last known status without calling upstream.
func (m *Manager) Last(interviewID string) (Update, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.interviews[interviewID]; st != nil && st.cur.Seq > 0 {
		return st.cur, true
	}
	return Update{}, false
}

// Since returns the remembered changes with Seq above seq, oldest first,
// without calling upstream. A flow has a handful of statuses, so the last
// historyLen changes let a reconnecting client catch up on every change it
// missed, not only the latest.
func (m *Manager) Since(interviewID string, seq uint64) []Update {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.interviews[interviewID]
	if st == nil {
		return nil
	}
	i := len(st.history)
	for i > 0 && st.history[i-1].Seq > seq {
		i--
	}
	return slices.Clone(st.history[i:])
}

// Current returns the interview's status. It answers from memory while a
// poller keeps the status fresh, after the flow finished, during a backoff,
// or when the last read is younger than one interval; otherwise it reads
// upstream through the shared singleflight call. ctx only bounds the wait:
// the read itself runs under CallTimeout and is not cancelled when this
// caller gives up. After a failed read, the last known status is returned
// if there is one.
func (m *Manager) Current(ctx context.Context, interviewID string) (Update, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Update{}, ErrClosed
	}
	st := m.stateLocked(interviewID)
	now := time.Now()
	st.usedAt = now
	if st.cur.Seq > 0 && m.syncedLocked(st) && (st.stop != nil || m.freshLocked(st, now)) {
		u := st.cur
		m.mu.Unlock()
		m.metrics.read("memory")
		return u, nil
	}
	m.mu.Unlock()
	return m.read(ctx, interviewID)
}

// freshLocked reports whether an upstream read of st would be redundant
// now: the flow finished, the status was read or pushed within the last
// interval, a backoff runs, or another node of the cluster reads it.
func (m *Manager) freshLocked(st *interview, now time.Time) bool {
	return st.cur.Finished() || now.Sub(st.readAt) < m.cfg.Interval || now.Sub(st.pushedAt) < m.cfg.Interval ||
		now.Before(st.retryAt) || now.Before(st.following)
}

// syncedLocked reports whether st holds what the cluster knows: it was
// loaded since the last resync (always, for a node alone).
func (m *Manager) syncedLocked(st *interview) bool { return !m.shared || st.syncGen == m.gen }

// read joins or starts the singleflight read of an interview and waits for
// it or for ctx.
func (m *Manager) read(ctx context.Context, interviewID string) (Update, error) {
	ch := m.reads.DoChan(interviewID, func() (any, error) { return m.fetch(interviewID) })
	select {
	case r := <-ch:
		u, _ := r.Val.(Update)
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
		return Update{}, ctx.Err()
	}
}

// fetch runs in the singleflight goroutine of one interview: reads of the
// same interview never overlap, which keeps its publishes in Seq order.
// On error it returns the last known status with the error.
func (m *Manager) fetch(interviewID string) (Update, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Update{}, ErrClosed
	}
	m.wg.Add(1) // under mu and before Close marks closed, so Wait sees it
	defer m.wg.Done()
	st := m.stateLocked(interviewID)
	st.reading++ // the sweeper keeps st meanwhile
	defer func() { m.mu.Lock(); st.reading--; m.mu.Unlock() }()
	if !m.syncedLocked(st) || (m.shared && st.token == "" && st.failures > 0) {
		// Stale, or reads fail for want of a session token another node
		// may have shared since.
		m.mu.Unlock()
		m.sync(st)
		m.mu.Lock()
	}
	now := time.Now()
	if st.cur.Seq > 0 && m.freshLocked(st, now) {
		u := st.cur
		m.mu.Unlock()
		return u, nil
	}
	began := now
	if st.lastErr != nil && now.Before(st.retryAt) {
		err := st.lastErr // backing off, and no status known yet
		m.mu.Unlock()
		return Update{}, err
	}
	m.mu.Unlock()
	u, followed, leads := m.follow(st)
	if followed {
		return u, nil
	}

	m.mu.Lock()
	token := st.token
	m.mu.Unlock()
	status, err := m.call(interviewID, token)

	m.mu.Lock()
	if leads && st.stop == nil {
		m.releaseIdle(st)
	}
	if err != nil {
		u := m.failedLocked(st, err)
		m.mu.Unlock()
		return u, err
	}
	if st.failures > 0 {
		m.cfg.Logger.Info("upstream status read recovered", "interview", interviewID, "failures", st.failures)
	}
	st.failures, st.retryAt, st.readAt, st.lastErr = 0, time.Time{}, time.Now(), nil
	m.mu.Unlock()
	u, _ = m.apply(st, status, began)
	return u, nil
}

// releaseIdle gives the lease a one-off read took (a snapshot before Watch,
// a polling client) back one interval later, unless a poller started here
// meanwhile and keeps it. Holding it that long lets the stream that asked
// for the snapshot start its poller without the lease changing hands, and
// other nodes, which wait for the lease to lapse, do not wait on a lease
// nobody uses. Called with m.mu held.
func (m *Manager) releaseIdle(st *interview) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTimer(m.cfg.Interval)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.ctx.Done():
		}
		m.mu.Lock()
		idle := st.stop == nil
		m.mu.Unlock()
		if idle {
			m.cluster.Release(st.id)
		}
	}()
}

// follow asks the cluster whether another node reads the interview, and if
// so returns the status it shared instead of reading upstream (followed).
// With no status known yet, it waits up to one interval for the other
// node's first read before reading itself. leads reports that this node
// holds the lease; a cluster out of reach means this node reads, alone.
func (m *Manager) follow(st *interview) (u Update, followed, leads bool) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	wait, err := m.cluster.Lead(ctx, st.id)
	cancel()
	if err != nil || wait <= 0 {
		return Update{}, false, err == nil
	}
	m.mu.Lock()
	st.following = time.Now().Add(wait)
	u, known := st.cur, st.known
	m.mu.Unlock()
	if u.Seq > 0 {
		return u, true, false
	}
	t := time.NewTimer(m.cfg.Interval)
	defer t.Stop()
	select {
	case <-known:
		m.mu.Lock()
		defer m.mu.Unlock()
		return st.cur, true, false
	case <-t.C:
	case <-m.ctx.Done():
	}
	return Update{}, false, false
}

// Push applies a status the upstream pushed (its webhook) to a tracked
// interview, with the same sequence numbers and dedupe as polled ones: a
// change seen by both is published once. It reports whether the status
// was new. A push of a known flow status that ranks before the current one
// (an old webhook delivered late) is ignored: the flow only moves forward.
// Interviews neither this node nor its cluster knows give
// ErrUnknownInterview.
func (m *Manager) Push(interviewID, status string) (Update, bool, error) {
	st, err := m.tracked(interviewID)
	if err != nil {
		return Update{}, false, err
	}
	u, changed := m.apply(st, status, time.Time{})
	return u, changed, nil
}

// tracked returns the state of an interview this node knows or, in a
// cluster, one that another node registered: an interview this node has no
// session token for is loaded first, unless it was loaded since the last
// resync.
func (m *Manager) tracked(interviewID string) (*interview, error) {
	m.mu.Lock()
	st, closed := m.interviews[interviewID], m.closed
	switch {
	case closed:
		m.mu.Unlock()
		return nil, ErrClosed
	case st != nil && (st.token != "" || m.syncedLocked(st)):
		m.mu.Unlock()
		return st, nil
	case st == nil && !m.shared:
		m.mu.Unlock()
		return nil, ErrUnknownInterview
	}
	st = m.stateLocked(interviewID)
	st.reading++ // kept while loading
	m.mu.Unlock()
	m.sync(st)
	m.mu.Lock()
	defer m.mu.Unlock()
	st.reading--
	if st.token == "" && st.cur.Seq == 0 && st.watchers == 0 && st.reading == 0 && st.stop == nil {
		delete(m.interviews, interviewID) // not ours to remember
		return nil, ErrUnknownInterview
	}
	return st, nil
}

// apply records a status read at readAt (zero for a push) and publishes it
// when it changed. Holding st.publish across the change and its publish
// keeps the publishes of one interview in Seq order, whichever goroutine
// (poll, push or the cluster's feed) makes them. A read that began before
// the last change made elsewhere may be older than it, so it only counts
// when it moves the flow forward. In a cluster the change is committed to
// the shared copy first, on top of the last change this node knows is
// stored there; a commit that finds changes this node missed merges them
// and decides again. m.mu must not be held.
func (m *Manager) apply(st *interview, status string, readAt time.Time) (Update, bool) {
	st.publish.Lock()
	defer st.publish.Unlock()
	pushed := readAt.IsZero()
	m.reconcileLocked(st)
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		if pushed {
			st.pushedAt, st.usedAt = time.Now(), time.Now()
		}
		cur, base := st.cur, st.shared.Seq
		if !m.changesLocked(st, status, readAt) {
			m.mu.Unlock()
			return cur, false
		}
		next := Update{InterviewID: st.id, Status: status, Seq: nextSeq(cur.Seq)}
		m.mu.Unlock()

		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		stored, err := m.cluster.Commit(ctx, base, next, pushed)
		cancel()
		if err == nil && len(stored) > 0 {
			// Another node committed first: take its changes, then decide
			// again against them, a few times at most.
			m.mergeLocked(st, stored, false)
			if attempt < 3 {
				continue
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			return st.cur, false
		}
		m.mu.Lock()
		if err == nil {
			st.shared = next
		} else {
			// The shared copy is out of reach, or refused the change: this
			// node goes on alone, and shares what it saw once it syncs.
			st.syncGen = 0
		}
		m.recordLocked(st, next)
		closed := m.closed
		m.mu.Unlock()
		if !closed {
			m.metrics.changed()
			m.pub.Publish(next)
		}
		return next, true
	}
}

// reconcileLocked shares what this node saw alone (while the shared copy
// was out of reach) once it is back: the later of its own status and the
// stored one in the flow is committed as a new change, numbered above both,
// so that every node ends on the same status and ids again. A node that
// already shows that status records the new id without publishing it.
// st.publish must be held; m.mu must not.
func (m *Manager) reconcileLocked(st *interview) {
	if !m.shared {
		return
	}
	m.mu.Lock()
	cur, shared := st.cur, st.shared
	m.mu.Unlock()
	if cur.Seq == 0 || cur.Seq == shared.Seq {
		return
	}
	target := cur.Status
	if shared.Seq > 0 && advances(cur.Status, shared.Status) {
		target = shared.Status
	}
	next := Update{InterviewID: st.id, Status: target, Seq: nextSeq(max(cur.Seq, shared.Seq))}
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	stored, err := m.cluster.Commit(ctx, shared.Seq, next, false)
	cancel()
	switch {
	case err != nil:
		return // still out of reach: tried again at the next sync
	case len(stored) > 0:
		m.mergeLocked(st, stored, false) // decided again at the next sync
		m.mu.Lock()
		st.syncGen = 0
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	st.shared = next
	m.mu.Unlock()
	m.mergeLocked(st, []Update{next}, false)
}

// changesLocked decides whether status, read at readAt (zero for a push),
// changes the interview.
func (m *Manager) changesLocked(st *interview, status string, readAt time.Time) bool {
	switch {
	case st.cur.Seq == 0:
		return true
	case st.cur.Status == status:
		return false
	case !readAt.IsZero() && !readAt.After(st.external):
		// A change made elsewhere overtook this read: its answer may be
		// older than that change, so only a status known to come later
		// is taken.
		return advances(st.cur.Status, status)
	default:
		// The flow only moves forward: an answer behind what was already
		// seen (a late webhook, a lagging replica) changes nothing.
		return !regresses(st.cur.Status, status)
	}
}

// recordLocked makes u the interview's current status and stops its poller
// once the flow finished.
func (m *Manager) recordLocked(st *interview, u Update) {
	if st.cur.Seq == 0 && st.known != nil {
		close(st.known)
		st.known = nil
	}
	st.cur = u
	if len(st.history) == historyLen {
		st.history = append(st.history[:0], st.history[1:]...)
	}
	st.history = append(st.history, u)
	if u.Finished() && st.stop != nil {
		st.stop()
		st.stop = nil
	}
}

// merge takes changes committed elsewhere (by another node, or before this
// node loaded the interview) and publishes those it did not have, in order.
func (m *Manager) merge(st *interview, changes []Update, pushed bool) {
	st.publish.Lock()
	defer st.publish.Unlock()
	m.mergeLocked(st, changes, pushed)
}

// mergeLocked is merge with st.publish held. changes are stored in the
// cluster, oldest first. A change that only renumbers the current status
// (see reconcileLocked) is recorded but not published: subscribers never
// get the same status twice in a row.
func (m *Manager) mergeLocked(st *interview, changes []Update, pushed bool) {
	var fresh []Update
	m.mu.Lock()
	alone := st.cur.Seq != st.shared.Seq // cur was numbered alone: reconcileLocked decides
	for _, u := range changes {
		u.InterviewID = st.id
		st.shared = u // the stored tail, even when older than what this node thought (a Redis rolled back)
		if u.Seq <= st.cur.Seq || (alone && regresses(st.cur.Status, u.Status)) {
			continue
		}
		same := u.Status == st.cur.Status
		m.recordLocked(st, u)
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
	closed := m.closed
	m.mu.Unlock()
	if !closed {
		for _, u := range fresh {
			m.pub.Publish(u)
		}
	}
}

// sync loads the interview's shared state, merges what this node missed
// and shares what it saw alone. Out of reach, it leaves st as it is, still
// marked stale.
func (m *Manager) sync(st *interview) {
	if !m.shared {
		return
	}
	m.mu.Lock()
	gen, marks := m.gen, st.staleMarks // a resync or a missed change during the load leaves st stale
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancel()
	sh, err := m.cluster.Load(ctx, st.id)
	if err != nil {
		return
	}
	m.mu.Lock()
	token := st.token
	if token == "" {
		st.token = sh.Token
	}
	if sh.PushedAt.After(st.pushedAt) {
		st.pushedAt = sh.PushedAt
	}
	m.mu.Unlock()
	if sh.Token == "" && token != "" {
		_ = m.cluster.Share(ctx, st.id, token) // the shared copy lost it
	}
	st.publish.Lock()
	if len(sh.History) == 0 {
		m.mu.Lock()
		st.shared = Update{} // nothing stored (expired, or a Redis that restarted empty)
		m.mu.Unlock()
	}
	m.mergeLocked(st, sh.History, false)
	m.reconcileLocked(st)
	st.publish.Unlock()
	m.mu.Lock()
	if st.staleMarks == marks {
		st.syncGen = gen
	}
	m.mu.Unlock()
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
	m.mu.Lock()
	st := m.interviews[c.InterviewID]
	m.mu.Unlock()
	if st == nil {
		return // not served here; loaded when it is
	}
	st.publish.Lock() // lock order: publish before mu
	m.mu.Lock()
	follows := c.Prev == st.shared.Seq && st.cur.Seq == st.shared.Seq
	stale := !follows && c.Seq > st.shared.Seq
	active := st.watchers > 0 || st.stop != nil
	if stale && !active {
		st.syncGen = 0 // loaded when next used
		st.staleMarks++
	}
	m.mu.Unlock()
	if follows {
		m.mergeLocked(st, []Update{c.Update}, c.Pushed)
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
	m.gen++
	var active, others []*interview
	for _, st := range m.interviews {
		switch {
		case st.watchers > 0 || st.stop != nil:
			active = append(active, st)
		case st.token != "":
			others = append(others, st)
		}
	}
	m.mu.Unlock()
	for _, st := range active {
		if m.ctx.Err() != nil {
			return
		}
		m.sync(st)
	}
	for _, st := range others {
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		m.mu.Lock()
		token := st.token
		m.mu.Unlock()
		err := m.cluster.Share(ctx, st.id, token)
		cancel()
		if err != nil {
			return
		}
	}
}

// flowRank orders the statuses of a flow; later statuses rank higher.
var flowRank = map[string]int{
	"UNKNOWN":                          0,
	"ID_VALIDATION_FINISHED":           1,
	"ID_VALIDATION_FINISHED_SECOND_ID": 2,
	"POST_PROCESSING_FINISHED":         3,
	"FACE_VALIDATION_FINISHED":         4,
	"GOVERNMENT_VALIDATION_FINISHED":   5,
	StatusFinished:                     6,
	"MANUAL_REVIEW_APPROVED":           7,
	"MANUAL_REVIEW_REJECTED":           7,
}

// flowOrder compares two statuses by their place in the flow: negative
// when next comes before cur, positive when after, zero when either is not
// a known flow status (unknown statuses are never judged) or they tie.
func flowOrder(cur, next string) int {
	rc, okc := flowRank[cur]
	rn, okn := flowRank[next]
	if !okc || !okn {
		return 0
	}
	return rn - rc
}

// regresses reports whether next is a known status that comes before cur.
func regresses(cur, next string) bool { return flowOrder(cur, next) < 0 }

// advances reports whether next is a known status that comes after cur.
func advances(cur, next string) bool { return flowOrder(cur, next) > 0 }

// nextSeq is the sequence number of the change after prev: the wall clock
// in milliseconds, or prev+1 when that is larger. A gateway that restarted,
// or forgot an interview, thus numbers its changes above every id it handed
// out before, so a client reconnecting with an old Last-Event-ID is never
// mistaken for one that is up to date; and nodes of a cluster that numbered
// changes alone while the shared copy was out of reach agree again with
// the first change committed after it is back.
func nextSeq(prev uint64) uint64 {
	return max(prev+1, uint64(time.Now().UnixMilli()))
}

// call performs one upstream read under the global rate ceiling and
// concurrency cap. Waiting for those and the call itself each get
// CallTimeout, so a wait never eats the time of a call already sent.
func (m *Manager) call(interviewID, token string) (string, error) {
	wait, cancelWait := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancelWait()
	if m.ceiling != nil {
		if err := m.ceiling.Wait(wait); err != nil {
			return "", fmt.Errorf("poller: waiting under the upstream call ceiling: %w", err)
		}
	}
	select {
	case m.sem <- struct{}{}:
	case <-wait.Done():
		return "", fmt.Errorf("poller: waiting for an upstream slot: %w", wait.Err())
	}
	defer func() { <-m.sem }()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancel()
	return m.src.Status(ctx, interviewID, token)
}

// failedLocked records a failed read and schedules the next attempt.
func (m *Manager) failedLocked(st *interview, err error) Update {
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
	return st.cur
}

// backoff is the wait after n consecutive failures: Interval doubled per
// failure, capped at BackoffMax, with the upper half randomised.
func (m *Manager) backoff(n int) time.Duration {
	d := m.cfg.Interval
	for i := 1; i < n && d < m.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, m.cfg.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

// startLocked starts the poller of st unless one runs, the flow finished or
// the Manager is closed.
func (m *Manager) startLocked(st *interview) {
	if m.closed || st.stop != nil || st.cur.Finished() {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	st.stop = cancel
	m.wg.Add(1)
	go m.poll(ctx, st.id)
}

// poll is the poller goroutine of one interview. It gives the interview's
// lease back when it ends.
func (m *Manager) poll(ctx context.Context, interviewID string) {
	defer m.wg.Done()
	defer m.cluster.Release(interviewID)
	t := time.NewTimer(m.nextWait(interviewID))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := m.read(ctx, interviewID); errors.Is(err, ErrClosed) {
			return
		}
		t.Reset(m.nextWait(interviewID))
	}
}

// nextWait is the time until the interview's next read is due, plus jitter.
func (m *Manager) nextWait(interviewID string) time.Duration {
	m.mu.Lock()
	st := m.stateLocked(interviewID)
	interval := m.cfg.Interval
	if !st.pushedAt.IsZero() && time.Since(st.pushedAt) < m.cfg.PushSilence {
		interval = m.cfg.PushInterval // the upstream pushes: polling is a safety net
	}
	// A push counts as a read: it is as fresh (see freshLocked). While
	// another node reads, the next look is when its lease may lapse.
	next := st.readAt.Add(interval)
	for _, t := range []time.Time{st.pushedAt.Add(m.cfg.Interval), st.retryAt, st.following} {
		if t.After(next) {
			next = t
		}
	}
	m.mu.Unlock()
	return max(time.Until(next), 0) + m.jitter()
}

func (m *Manager) jitter() time.Duration {
	if m.cfg.Jitter == 0 {
		return 0
	}
	return rand.N(time.Duration(float64(m.cfg.Interval)*m.cfg.Jitter) + 1)
}

func (m *Manager) unwatch(st *interview) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st.watchers--
	if st.watchers > 0 {
		return
	}
	st.usedAt = time.Now()
	if st.stop == nil || m.closed {
		return
	}
	st.lingerGen++
	gen := st.lingerGen
	st.linger = time.AfterFunc(m.cfg.Linger, func() { m.lingerDone(st, gen) })
}

// lingerDone runs in the linger timer's goroutine.
func (m *Manager) lingerDone(st *interview, gen int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != st.lingerGen || st.watchers > 0 {
		return
	}
	st.linger = nil
	if st.stop != nil {
		st.stop()
		st.stop = nil
	}
}

// count returns how many interviews match, for the metrics' gauges.
func (m *Manager) count(match func(*interview) bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, st := range m.interviews {
		if match(st) {
			n++
		}
	}
	return n
}

// stateLocked returns the state of an interview, creating it when missing.
func (m *Manager) stateLocked(interviewID string) *interview {
	st := m.interviews[interviewID]
	if st == nil {
		st = &interview{id: interviewID, usedAt: time.Now(), known: make(chan struct{})}
		m.interviews[interviewID] = st
	}
	return st
}

// sweep forgets interviews nobody has watched for Retention.
func (m *Manager) sweep() {
	defer m.wg.Done()
	every := min(max(m.cfg.Retention/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			m.mu.Lock()
			for id, st := range m.interviews {
				if st.watchers == 0 && st.stop == nil && st.reading == 0 && now.Sub(st.usedAt) > m.cfg.Retention {
					delete(m.interviews, id)
				}
			}
			m.mu.Unlock()
		}
	}
}
