package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// A soak worker keeps its interviews live for the whole run while browsers
// come and go. Each assigned interview is a lane, a chain of generations:
// a generation is a brand-new session whose streams are walked through the
// changes over about -interview-life and end with the flow; then the lane
// starts the next one. Meanwhile the churn closes random open streams,
// which reopen after a short pause with Last-Event-ID. The worker creates
// its own sessions and drives its own changes, since interviews appear all
// along, and tallies each generation as it ends, so that its memory stays
// flat however long the soak.
//
//	parent ──assignment──▶ every lane opens its first generation; ready
//	parent ──"churn"─────▶ lanes drive changes and renew interviews; the churn closes streams
//	parent ──"settle"────▶ no more changes or closes; every lane ends whole (all its streams open)
//	parent ──end of stdin▶ everything closes; the tally goes back

// soakPlan is the soak part of an assignment.
type soakPlan struct {
	Churn    float64       `json:"churn"`     // streams this worker closes (and reopens) per second
	Life     time.Duration `json:"life"`      // mean time from an interview's session to its last change
	Subs     int           `json:"subs"`      // streams per interview
	SimToken string        `json:"sim_token"` // the simulator's control token; "" sends none
}

// Soak phases, in the order the parent signals them.
const (
	phaseChurn  = "churn"
	phaseSettle = "settle"
)

// workerSignal moves a soak worker to its next phase.
type workerSignal struct {
	Phase string `json:"phase"`
}

// soaker runs the lanes of one soak assignment on top of a worker, whose
// counters, errors and connecting tokens it shares.
type soaker struct {
	w         *worker
	plan      soakPlan
	api       *api
	lanes     []*lane       // fixed before any goroutine starts
	churning  chan struct{} // closed on "churn"
	settling  chan struct{} // closed on "settle"
	firstTry  sync.WaitGroup
	connSeq   atomic.Int64 // picks each connection's source address
	connected atomic.Int64 // streams of the first generations that opened

	drops, cycles, pending, started, completed atomic.Int64 // pending: closed by the churn, not reopened yet
	quieted                                    atomic.Bool  // settled, and the idle connections closed

	mu   sync.Mutex // protects live and res
	live []*soakSub // open streams the churn may close
	res  soakResult
}

// lane is one assigned interview slot and its current generation.
type lane struct {
	iv    assigned // Index picks the nodes; ID and Token are the first interview's
	gen   atomic.Pointer[generation]
	final atomic.Bool // settled: this generation stays until the stop
}

// generation is one interview of a lane, from its session to its end.
type generation struct {
	iv        assigned
	changedAt []int64 // change k at [k-1], Unix ns; written by the lane goroutine
	subs      []*soakSub
	ctx       context.Context // ends its streams
	cancel    context.CancelFunc
	wg        sync.WaitGroup // its streams' goroutines
	toGreet   atomic.Int64   // streams without a first status yet
	greeted   chan struct{}  // closed when toGreet reaches 0
	toFinish  atomic.Int64   // streams that did not see the last change yet
	finished  chan struct{}  // closed when toFinish reaches 0
}

// soakSub is one subscriber of a generation: one browser tab, over as
// many connections as the churn makes it open.
type soakSub struct {
	slot                  // its goroutine alone touches it until the generation's wg is done
	up        atomic.Bool // a connection is open now
	dropped   atomic.Bool // the churn closed the current connection
	greeted   bool        // its goroutine only: saw a first status
	reached   bool        // its goroutine only: saw the last change
	reopening bool        // its goroutine only: the churn closed it, and it has not reopened yet
	conn      net.Conn    // guarded by soaker.mu, while listed
	liveAt    int         // index in soaker.live, -1 when not listed; guarded by soaker.mu
}

// runSoak is runWorker for a soak assignment.
func runSoak(ctx context.Context, a assignment, signals <-chan workerSignal, report func(progress)) (workerResult, error) {
	if a.Mode != "sse" || len(a.Gateways) == 0 || a.Soak.Subs <= 0 {
		return workerResult{}, errors.New("a soak needs sse mode, a gateway and streams per interview")
	}
	w := &worker{a: a, sem: make(chan struct{}, maxConnecting), errs: map[string]int{}}
	for _, g := range a.Gateways {
		u, err := url.Parse(g)
		if err != nil {
			return workerResult{}, err
		}
		w.hosts = append(w.hosts, u.Host)
	}
	w.nodeErrs, w.nodeFailed = make([]int, len(w.hosts)), make([]int, len(w.hosts))
	s := &soaker{w: w, plan: *a.Soak, churning: make(chan struct{}), settling: make(chan struct{})}
	s.api = newAPI(a.Gateways, a.Sim, "", a.Soak.SimToken)
	defer s.api.Close()
	for _, iv := range a.Interviews {
		s.lanes = append(s.lanes, &lane{iv: iv})
	}
	base, _ := procRSS("self")
	stopReports := w.reportEvery(250*time.Millisecond, func(p progress) {
		sp := s.progress()
		p.Soak = &sp
		report(p)
	})
	var lanes, bg sync.WaitGroup
	s.firstTry.Add(len(s.lanes) * s.plan.Subs)
	for _, l := range s.lanes {
		lanes.Go(func() { s.runLane(ctx, l) })
	}
	s.firstTry.Wait()
	peak, _ := procRSS("self")
	w.ready.Store(true)
	bg.Go(func() { s.listen(ctx, signals) })
	bg.Go(func() { s.churn(ctx) })
	bg.Go(func() { s.quiet(ctx) })
	lanes.Wait()
	bg.Wait()
	stopReports()
	s.res.soakProgress = s.progress()
	return workerResult{
		Errors: w.errs, NodeErrors: w.nodeErrs, NodeFailed: w.nodeFailed, Refused: w.refused,
		Attempted: int(w.attempted.Load()), Connected: int(s.connected.Load()),
		FirstTry: w.firstTry.Load(), LastOpen: w.lastOpen.Load(), RSSBase: base, RSSPeak: peak,
		Soak: &s.res,
	}, nil
}

// listen turns the parent's signals into closed channels, until ctx ends.
func (s *soaker) listen(ctx context.Context, signals <-chan workerSignal) {
	churning, settling := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-signals:
			if (sig.Phase == phaseChurn || sig.Phase == phaseSettle) && !churning {
				churning = true
				close(s.churning)
			}
			if sig.Phase == phaseSettle && !settling {
				settling = true
				close(s.settling)
			}
		}
	}
}

// runLane runs the generations of one lane until ctx ends. After "settle"
// a lane drives no more changes: a generation in the middle of its flow
// stays as it is, one that made its last change ends and is replaced by a
// fresh one without changes, so that every lane ends with all its streams
// open, as at the start.
func (s *soaker) runLane(ctx context.Context, l *lane) {
	// The first connects spread over one interval, so that the pollers
	// they start do not tick in step (each interview's poller starts with
	// its first stream): in step, every tick is a burst of reads that
	// holds a pool of upstream connections open for minutes, and the start
	// sample would count their goroutines.
	sleep(ctx, rand.N(s.w.a.Interval))
	g := s.open(ctx, l, l.iv, s.w.a.Changes, true)
	select {
	case <-ctx.Done():
	case <-s.churning:
	}
	for s.drive(ctx, g) {
		s.finish(ctx, g)
		iv, ok := s.newInterview(ctx, l)
		if !ok {
			return
		}
		changes := s.w.a.Changes
		if closed(s.settling) {
			changes = 0
		}
		g = s.open(ctx, l, iv, changes, false)
	}
	l.final.Store(true)
	<-ctx.Done()
	s.close(g)
}

// open starts a generation: one goroutine per stream.
func (s *soaker) open(ctx context.Context, l *lane, iv assigned, changes int, first bool) *generation {
	g := &generation{iv: iv, changedAt: make([]int64, changes), greeted: make(chan struct{}), finished: make(chan struct{})}
	g.ctx, g.cancel = context.WithCancel(ctx)
	g.toGreet.Store(int64(s.plan.Subs))
	g.toFinish.Store(int64(s.plan.Subs))
	for k := range s.plan.Subs {
		sb := &soakSub{liveAt: -1}
		sb.report.Node = (iv.Index + k) % len(s.w.hosts) // as in the first run: subscriber k on node (i+k) mod N
		g.subs = append(g.subs, sb)
	}
	l.gen.Store(g)
	s.started.Add(1)
	for _, sb := range g.subs {
		g.wg.Go(func() { s.subscribe(g, sb, first) })
	}
	return g
}

// drive makes a generation's changes over a life drawn between half and
// one and a half -interview-life, so that lanes drift apart and sessions
// start evenly over time. It waits first until every stream saw its first
// status: a change before the gateway read walk[0] would hide it. It
// answers false when "settle" or the stop came before the last change.
func (s *soaker) drive(ctx context.Context, g *generation) bool {
	if len(g.changedAt) == 0 {
		return false
	}
	greet := time.NewTimer(2 * connectTimeout) // a stream that cannot open does not hold the rest
	defer greet.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-s.settling:
		return false
	case <-g.greeted:
	case <-greet.C:
	}
	life := time.Duration(float64(s.plan.Life) * (0.5 + rand.Float64()))
	plan := planChanges(1, len(g.changedAt), life, s.w.a.Interval, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for _, c := range plan {
		t.Reset(time.Until(start.Add(c.at)))
		select {
		case <-ctx.Done():
			return false
		case <-s.settling:
			return false
		case <-t.C:
		}
		sent := time.Now().UnixNano()
		if err := s.api.setStatus(ctx, g.iv.ID, walk[c.k]); err != nil {
			if ctx.Err() == nil {
				s.count("change: " + errorKind(err))
			}
			continue
		}
		g.changedAt[c.k-1] = sent
	}
	return true
}

// finish waits until every stream saw the last change (the gateway then
// ends the streams of a finished flow), as long as a drain, and ends the
// generation.
func (s *soaker) finish(ctx context.Context, g *generation) {
	t := time.NewTimer(3*time.Second + 5*s.w.a.Interval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-g.finished:
	case <-t.C:
	}
	s.close(g)
	if ctx.Err() == nil {
		s.completed.Add(1)
	}
}

// close ends a generation's streams, waits for them and tallies what they
// saw.
func (s *soaker) close(g *generation) {
	g.cancel()
	g.wg.Wait()
	var subs []subReport
	for _, sb := range g.subs {
		if sb.connected {
			r := sb.report
			r.Interview = 0
			subs = append(subs, r)
		}
	}
	t := account(subs, [][]int64{g.changedAt})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.res.add(t, g.changedAt)
	if t.Missed > 0 && len(s.res.Misses) < maxMisses {
		s.res.Misses = append(s.res.Misses, describeMisses(g.iv.ID, subs, g.changedAt)...)
	}
}

// newInterview starts the lane's next session the way the page does, at
// the lane's node, retrying until it gets one or ctx ends.
func (s *soaker) newInterview(ctx context.Context, l *lane) (assigned, bool) {
	for ctx.Err() == nil {
		sess, err := s.api.gatewaySession(ctx, l.iv.Index)
		if err == nil && (sess.ID == "" || sess.Token == "") {
			err = errors.New("session answer without interviewId or token")
		}
		if err == nil {
			return assigned{Index: l.iv.Index, ID: sess.ID, Token: sess.Token, Subs: s.plan.Subs}, true
		}
		if ctx.Err() == nil {
			s.count("session: " + errorKind(err))
		}
		sleep(ctx, s.w.a.Interval)
	}
	return assigned{}, false
}

// quiet waits for the worker to settle, and then closes its idle
// keep-alive connections: each holds a goroutine in the gateway (or in its
// built-in simulator), which the end sample would count.
func (s *soaker) quiet(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-s.settling:
	}
	for !s.whole() {
		if sleep(ctx, 50*time.Millisecond); ctx.Err() != nil {
			return
		}
	}
	s.api.Close()
	s.quieted.Store(true)
}

// whole reports whether no stream waits to reopen and every lane holds
// its last generation with all its streams open and greeted.
func (s *soaker) whole() bool {
	if s.pending.Load() != 0 {
		return false
	}
	for _, l := range s.lanes {
		g := l.gen.Load()
		if !l.final.Load() || g == nil || g.toGreet.Load() != 0 {
			return false
		}
		for _, sb := range g.subs {
			if !sb.up.Load() {
				return false
			}
		}
	}
	return true
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
