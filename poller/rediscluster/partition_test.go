package rediscluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

// partitioned is a Node cut off from Redis while off is set: commands fail
// and the feed is lost, as in a network partition of this node only. On
// heal it sends the Resync a real Node sends when Redis is back.
type partitioned struct {
	*Node
	off  atomic.Bool
	out  chan poller.Change
	done chan struct{}
	wg   sync.WaitGroup
}

func newPartitioned(n *Node) *partitioned {
	p := &partitioned{Node: n, out: make(chan poller.Change, 4096), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.done:
				return
			case c := <-n.Changes():
				if !p.off.Load() {
					p.out <- c
				}
			}
		}
	}()
	return p
}
func (p *partitioned) stop() { close(p.done); p.wg.Wait() }
func (p *partitioned) heal() { p.off.Store(false); p.out <- poller.Change{Resync: true} }
func (p *partitioned) Lead(ctx context.Context, id string) (time.Duration, error) {
	if p.off.Load() {
		return 0, ErrUnavailable
	}
	return p.Node.Lead(ctx, id)
}
func (p *partitioned) Commit(ctx context.Context, prev uint64, next flow.Update, pushed bool) ([]flow.Update, error) {
	if p.off.Load() {
		return nil, ErrUnavailable
	}
	return p.Node.Commit(ctx, prev, next, pushed)
}
func (p *partitioned) Load(ctx context.Context, id string) (poller.Shared, error) {
	if p.off.Load() {
		return poller.Shared{}, ErrUnavailable
	}
	return p.Node.Load(ctx, id)
}
func (p *partitioned) Share(ctx context.Context, id, tok string) error {
	if p.off.Load() {
		return ErrUnavailable
	}
	return p.Node.Share(ctx, id, tok)
}
func (p *partitioned) Changes() <-chan poller.Change { return p.out }

// TestChangeSeenAloneIsSharedOnceBack: a node cut off from Redis sees a
// change alone; once back it shares it, so a node that follows it serves
// the same status with the same id.
func TestChangeSeenAloneIsSharedOnceBack(t *testing.T) {
	t.Parallel() // counts and orders only, and a Redis of its own
	const interval = 100 * time.Millisecond
	src := &pollertest.Source{}
	pa, a, b, recA, recB := twoNodes(t, src, src, interval)

	src.Set("iv", "UNKNOWN")
	a.Register("iv", "tok")
	defer a.Watch("iv")()
	time.Sleep(5 * interval)
	if u, err := b.Current(context.Background(), "iv"); err != nil || u.Status != "UNKNOWN" {
		t.Fatalf("b.Current = %+v, %v", u, err)
	}

	pa.off.Store(true) // A alone
	src.Set("iv", "ID_VALIDATION_FINISHED")
	time.Sleep(5 * interval)
	if u, _ := a.Last("iv"); u.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("a alone: %+v", u)
	}
	pa.heal()
	time.Sleep(2 * time.Second) // well past the lease TTL: back to one reader

	defer b.Watch("iv")()
	time.Sleep(2 * time.Second)
	ub, _ := b.Last("iv")
	ua, _ := a.Last("iv")
	t.Logf("a: %+v  b: %+v  a published %v  b published %v", ua, ub, recA.Of("iv"), recB.Of("iv"))
	if ub != ua || ub.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("2s after Redis came back, b serves %+v while a serves %+v (upstream: ID_VALIDATION_FINISHED)", ub, ua)
	}
}

// TestOutageEndsOnTheFinishedStatus: while node A is cut off from Redis,
// A and the cluster (node B) each see a status, in either order, one of
// them ONBOARDING_FINISHED, so a local id may outnumber the status the
// cluster committed (clock skew, a lagging replica, a late webhook). Once
// A is back, both nodes serve the finished status with one id, and A's
// subscribers never see a finished flow move back or a status twice in a
// row.
func TestOutageEndsOnTheFinishedStatus(t *testing.T) {
	t.Parallel() // counts and orders only, and a Redis of its own
	const interval = 100 * time.Millisecond
	for _, tc := range []struct {
		name         string
		aloneFirst   bool   // A sees its status before B commits its own
		aSees, bSees string // what each node's upstream answers
	}{
		{"cluster finished, local id higher", false, "FACE_VALIDATION_FINISHED", flow.StatusFinished},
		{"local finished, cluster id higher", true, flow.StatusFinished, "FACE_VALIDATION_FINISHED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // two nodes and a Redis of their own
			srcA := &pollertest.Source{}
			srcB := &pollertest.Source{}
			pa, a, b, recA, _ := twoNodes(t, srcA, srcB, interval)
			b.Register("iv", "tok")
			defer b.Watch("iv")() // B leads
			time.Sleep(5 * interval)
			defer a.Watch("iv")()
			time.Sleep(5 * interval)

			pa.off.Store(true)
			steps := []func(){func() { srcB.Set("iv", tc.bSees) }, func() { srcA.Set("iv", tc.aSees) }}
			if tc.aloneFirst {
				steps[0], steps[1] = steps[1], steps[0]
			}
			for _, step := range steps {
				step()
				time.Sleep(3 * interval)
			}
			pa.heal()
			time.Sleep(2 * time.Second)

			ua, _ := a.Last("iv")
			ub, _ := b.Last("iv")
			if ua != ub || ua.Status != flow.StatusFinished {
				t.Fatalf("a serves %+v, b serves %+v; want both on ONBOARDING_FINISHED with one id", ua, ub)
			}
			pubA := recA.Of("iv")
			if last := pubA[len(pubA)-1]; last.Status != flow.StatusFinished {
				t.Fatalf("a's subscribers last got %+v, want ONBOARDING_FINISHED", last)
			}
			for i := 1; i < len(pubA); i++ {
				if pubA[i].Seq <= pubA[i-1].Seq || pubA[i].Status == pubA[i-1].Status || flow.FlowOrder(pubA[i-1].Status, pubA[i].Status) < 0 {
					t.Fatalf("a published %v: want increasing ids, a finished flow never back, no status twice in a row", pubA)
				}
			}
		})
	}
}

// TestLaterObservationWinsAfterAnOutage: while node A is cut off from
// Redis it polls alone, and node B takes a status the upstream pushes. Once
// A is back, both nodes serve whichever status was seen later, under the
// id it was first numbered with: a client that got it from either node
// holds an id both nodes know, and gets nothing twice when it moves. A
// later observation behind the other in the flow (a read that lagged)
// does not win: both nodes serve the status further in the flow.
func TestLaterObservationWinsAfterAnOutage(t *testing.T) {
	t.Parallel() // counts and orders only, and a Redis of its own
	const interval = 100 * time.Millisecond
	for _, tc := range []struct {
		name      string
		aloneLast bool   // A sees its status after B took the pushed one
		aSees     string // what A reads alone
		behind    bool   // aSees is behind the pushed FACE_VALIDATION_FINISHED
	}{
		{"seen alone last", true, "POST_PROCESSING_FINISHED", false},
		{"seen alone last, behind the pushed one", true, "ID_VALIDATION_FINISHED", true},
		{"pushed to the cluster last", false, "ID_VALIDATION_FINISHED", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // two nodes and a Redis of their own
			src := &pollertest.Source{}
			pa, a, b, recA, recB := twoNodes(t, src, src, interval)
			src.Set("iv", "UNKNOWN")
			a.Register("iv", "tok")
			defer a.Watch("iv")() // A leads; B only takes pushes
			time.Sleep(5 * interval)

			pa.off.Store(true)
			alone := func() { src.Set("iv", tc.aSees); time.Sleep(3 * interval) }
			pushed := func() {
				if _, _, err := b.Push("iv", "FACE_VALIDATION_FINISHED"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(3 * interval)
			}
			if tc.aloneLast {
				pushed()
				alone()
			} else {
				alone()
				pushed()
				src.Set("iv", "FACE_VALIDATION_FINISHED") // what A reads once back
			}
			later := func(rec *pollertest.Recorder) flow.Update { got := rec.Of("iv"); return got[len(got)-1] }
			winner := later(recB) // the pushed change, as B numbered it
			if tc.aloneLast && !tc.behind {
				winner = later(recA)
			}
			pa.heal()
			time.Sleep(time.Second)

			ua, _ := a.Last("iv")
			ub, _ := b.Last("iv")
			// Seen alone last, A's change keeps A's id. Pushed last, A may
			// read the same status once more before it is back, numbering
			// it again: then both nodes serve that id.
			// Behind, the pushed status wins, renumbered above A's.
			if ua != ub || ua.Status != winner.Status || (tc.aloneLast && !tc.behind && ua != winner) {
				t.Fatalf("a serves %+v, b serves %+v; want both on the later observation %+v", ua, ub, winner)
			}
			for name, m := range map[string]*poller.Manager{"a": a, "b": b} {
				if got := m.Since("iv", ua.Seq); len(got) != 0 {
					t.Fatalf("%s: a client holding %d gets %v, want nothing", name, ua.Seq, got)
				}
			}
			for name, rec := range map[string]*pollertest.Recorder{"a": recA, "b": recB} {
				pub := rec.Of("iv")
				for i := 1; i < len(pub); i++ {
					if pub[i].Seq <= pub[i-1].Seq || pub[i].Status == pub[i-1].Status {
						t.Fatalf("%s published %v: want increasing ids and no status twice in a row", name, pub)
					}
				}
				if tc.behind && pub[len(pub)-1].Status != "FACE_VALIDATION_FINISHED" {
					t.Fatalf("%s published %v: want FACE_VALIDATION_FINISHED last, not the lagging read behind it", name, pub)
				}
			}
		})
	}
}

type needsToken struct{ *pollertest.Source }

func (s needsToken) Status(ctx context.Context, id, token string) (string, error) {
	if token == "" {
		return "", context.DeadlineExceeded // stands for upstream.ErrNoSession
	}
	return s.Source.Status(ctx, id, token)
}

// TestTokenRegisteredDuringAnOutageIsSharedOnceBack: a session registered
// while Redis was out of reach has its token shared once it is back, so a
// node where the browser's stream lands can read the status.
func TestTokenRegisteredDuringAnOutageIsSharedOnceBack(t *testing.T) {
	t.Parallel() // counts and orders only, and a Redis of its own
	srv := redistest.Start(t)
	const interval = 100 * time.Millisecond
	src := needsToken{&pollertest.Source{}}
	pa := newPartitioned(newNode(t, srv))
	a := mustManager(t, src, &pollertest.Recorder{}, poller.Config{Interval: interval, Cluster: pa})
	b := mustManager(t, src, &pollertest.Recorder{}, poller.Config{Interval: interval, Cluster: newNode(t, srv)})
	defer pa.stop()
	defer a.Close()
	defer b.Close()
	pa.off.Store(true)
	a.Register("iv", "tok") // Share fails
	pa.heal()
	time.Sleep(time.Second)
	defer b.Watch("iv")() // the browser's stream lands on b
	time.Sleep(3 * time.Second)
	if u, ok := b.Last("iv"); !ok {
		t.Fatalf("b never learned a status (%+v); token on b: %q", u, b.SessionToken("iv"))
	}
}

type crashable struct {
	*partitioned
	dead atomic.Bool
}

func (c *crashable) Release(id string) {
	if !c.dead.Load() {
		c.partitioned.Release(id)
	}
}

// TestTakeoverAfterCrash: the lease holder crashes (no release); the other
// node with a watcher reads the next change within a few TTLs.
func TestTakeoverAfterCrash(t *testing.T) {
	srv := redistest.Start(t)
	const interval = 100 * time.Millisecond
	src := &pollertest.Source{}
	na := newNode(t, srv)
	ca := &crashable{partitioned: newPartitioned(na)}
	recB := &pollertest.Recorder{}
	a := mustManager(t, src, &pollertest.Recorder{}, poller.Config{Interval: interval, Cluster: ca, Linger: time.Minute})
	b := mustManager(t, src, recB, poller.Config{Interval: interval, Cluster: newNode(t, srv), Linger: time.Minute})
	defer ca.stop()
	defer b.Close()
	a.Register("iv", "tok")
	defer a.Watch("iv")()
	time.Sleep(3 * interval)
	defer b.Watch("iv")()
	time.Sleep(5 * interval)
	holder, _ := srv.Do("GET", "pushgate:{iv}:lease")
	if holder != na.ID() {
		t.Fatalf("lease held by %q before the crash, want a (%q): the test needs a to lead", holder, na.ID())
	}
	ca.dead.Store(true)
	ca.off.Store(true)
	kill(na)
	a.Close()
	died := time.Now()
	src.Set("iv", "ID_VALIDATION_FINISHED")
	for {
		if u, _ := b.Last("iv"); u.Status == "ID_VALIDATION_FINISHED" {
			t.Logf("b took over %v after the crash (ttl %v)", time.Since(died), ttl)
			return
		}
		if time.Since(died) > 5*ttl {
			t.Fatal("no takeover")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRolledBackRedisTakesNewChanges: Redis comes back with an older state
// (a failover to a lagging replica, a restart from a snapshot); later
// changes are still committed and published.
func TestRolledBackRedisTakesNewChanges(t *testing.T) {
	t.Parallel() // counts and orders only, and a Redis of its own
	srv := redistest.Start(t)
	const interval = 100 * time.Millisecond
	src := &pollertest.Source{}
	pa := newPartitioned(newNode(t, srv))
	rec := &pollertest.Recorder{}
	a := mustManager(t, src, rec, poller.Config{Interval: interval, Cluster: pa, Linger: time.Minute})
	defer pa.stop()
	defer a.Close()
	a.Register("iv", "tok")
	defer a.Watch("iv")()
	time.Sleep(5 * interval)
	oldSeq, _ := srv.Do("HGET", "pushgate:{iv}:state", "seq")
	oldHist, _ := srv.Do("LINDEX", "pushgate:{iv}:history", "0")
	src.Set("iv", "ID_VALIDATION_FINISHED")
	time.Sleep(5 * interval)

	pa.off.Store(true) // failover: the new primary lacks the last commit
	srv.Do("DEL", "pushgate:{iv}:history")
	srv.Do("RPUSH", "pushgate:{iv}:history", oldHist)
	srv.Do("HSET", "pushgate:{iv}:state", "seq", oldSeq)
	pa.heal()
	time.Sleep(5 * interval)

	src.Set("iv", "FACE_VALIDATION_FINISHED")
	time.Sleep(2 * time.Second)
	u, _ := a.Last("iv")
	t.Logf("published %v", rec.Of("iv"))
	if u.Status != "FACE_VALIDATION_FINISHED" {
		t.Fatalf("2s after upstream moved on, a serves %+v", u)
	}
}

// TestLostStateKeyTakesNewChanges: the state hash is evicted (maxmemory)
// or expires apart from the history; later changes are still committed.
func TestLostStateKeyTakesNewChanges(t *testing.T) {
	t.Parallel() // counts and orders only, and a Redis of its own
	srv := redistest.Start(t)
	const interval = 100 * time.Millisecond
	src := &pollertest.Source{}
	rec := &pollertest.Recorder{}
	a := mustManager(t, src, rec, poller.Config{Interval: interval, Cluster: newNode(t, srv), Linger: time.Minute})
	defer a.Close()
	a.Register("iv", "tok")
	defer a.Watch("iv")()
	time.Sleep(5 * interval)
	srv.Do("DEL", "pushgate:{iv}:state")
	src.Set("iv", "ID_VALIDATION_FINISHED")
	time.Sleep(2 * time.Second)
	u, _ := a.Last("iv")
	if u.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("a serves %+v; published %v", u, rec.Of("iv"))
	}
}

// twoNodes starts a Redis and two Managers on it, as two gateway nodes: A
// can be cut off from Redis (pa), B cannot. Both stop when the test ends.
func twoNodes(t *testing.T, srcA, srcB poller.Source, interval time.Duration) (pa *partitioned, a, b *poller.Manager, recA, recB *pollertest.Recorder) {
	t.Helper()
	srv := redistest.Start(t)
	pa = newPartitioned(newNode(t, srv))
	t.Cleanup(pa.stop)
	recA, recB = &pollertest.Recorder{}, &pollertest.Recorder{}
	a = mustManager(t, srcA, recA, poller.Config{Interval: interval, Cluster: pa, Linger: time.Minute})
	t.Cleanup(a.Close)
	b = mustManager(t, srcB, recB, poller.Config{Interval: interval, Cluster: newNode(t, srv), Linger: time.Minute})
	t.Cleanup(b.Close)
	return pa, a, b, recA, recB
}

// mustManager starts a Manager, as one gateway node.
func mustManager(t *testing.T, src poller.Source, pub poller.Publisher, cfg poller.Config) *poller.Manager {
	t.Helper()
	m, err := poller.New(src, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOutageNeverBringsBackAMovedPastStatus: while node A is cut off from
// Redis, the cluster (node B) takes pushes ID_VALIDATION_FINISHED,
// POST_PROCESSING_FINISHED, FACE_VALIDATION_FINISHED, and A alone reads a
// lagging POST_PROCESSING_FINISHED after them. Once A is back, the cluster
// moved past that status: both nodes serve FACE_VALIDATION_FINISHED, and
// no node publishes POST_PROCESSING_FINISHED after it.
func TestOutageNeverBringsBackAMovedPastStatus(t *testing.T) {
	const interval = 100 * time.Millisecond
	src := &pollertest.Source{}
	pa, a, b, recA, recB := twoNodes(t, src, src, interval)
	src.Set("iv", "UNKNOWN")
	a.Register("iv", "tok")
	defer a.Watch("iv")() // A leads; B only takes pushes
	time.Sleep(5 * interval)

	pa.off.Store(true)
	for _, s := range []string{"ID_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED", "FACE_VALIDATION_FINISHED"} {
		if _, changed, err := b.Push("iv", s); err != nil || !changed {
			t.Fatalf("push %s: %v, %v", s, changed, err)
		}
	}
	time.Sleep(interval)
	src.Set("iv", "POST_PROCESSING_FINISHED") // what A reads alone, after the pushes
	eventually(5*time.Second, func() bool { u, _ := a.Last("iv"); return u.Status == "POST_PROCESSING_FINISHED" })
	if u, _ := a.Last("iv"); u.Status != "POST_PROCESSING_FINISHED" {
		t.Fatalf("a alone: %+v", u)
	}
	pa.heal()
	eventually(10*time.Second, func() bool {
		ua, _ := a.Last("iv")
		ub, _ := b.Last("iv")
		return ua.Status == "FACE_VALIDATION_FINISHED" && ua == ub
	})

	ua, _ := a.Last("iv")
	ub, _ := b.Last("iv")
	if ua.Status != "FACE_VALIDATION_FINISHED" || ua != ub {
		t.Fatalf("a serves %+v, b serves %+v; want both on FACE_VALIDATION_FINISHED with one id", ua, ub)
	}
	for name, rec := range map[string]*pollertest.Recorder{"a": recA, "b": recB} {
		pub := rec.Of("iv")
		seen := map[string]bool{}
		for i, u := range pub {
			if seen[u.Status] || (i > 0 && u.Seq <= pub[i-1].Seq) {
				t.Fatalf("%s published %v: a status twice, or ids not increasing", name, pub)
			}
			seen[u.Status] = true
		}
	}
}

// TestOutageEndNeverMovesTheStatusBack: while node A is cut off from
// Redis it reads ONBOARDING_FINISHED alone, and the cluster (node B)
// takes an EXPIRED pushed after it. Once A is back, the session is ended
// on both nodes, and A's subscribers never see the status move back: the
// end keeps the finished status.
func TestOutageEndNeverMovesTheStatusBack(t *testing.T) {
	const interval = 100 * time.Millisecond
	src := &pollertest.Source{}
	pa, a, b, recA, _ := twoNodes(t, src, src, interval)
	src.Set("iv", "FACE_VALIDATION_FINISHED")
	a.Register("iv", "tok")
	defer a.Watch("iv")()
	time.Sleep(5 * interval)

	pa.off.Store(true)
	src.Set("iv", flow.StatusFinished)
	eventually(5*time.Second, func() bool { u, _ := a.Last("iv"); return u.Status == flow.StatusFinished })
	if u, _ := a.Last("iv"); u.Status != flow.StatusFinished {
		t.Fatalf("a alone: %+v", u)
	}
	if u, changed, err := b.Push("iv", flow.StatusExpired); err != nil || !changed || u.End != flow.EndExpired {
		t.Fatalf("push EXPIRED on b: %+v, %v, %v", u, changed, err)
	}
	pa.heal()
	eventually(10*time.Second, func() bool {
		ua, _ := a.Last("iv")
		ub, _ := b.Last("iv")
		return ua.End == flow.EndExpired && ub.End == flow.EndExpired && ua.Seq == ub.Seq
	})

	ua, _ := a.Last("iv")
	ub, _ := b.Last("iv")
	if ua.End != flow.EndExpired || ub.End != flow.EndExpired || ua.Seq != ub.Seq {
		t.Fatalf("a serves %+v, b serves %+v; want both ended, with one id", ua, ub)
	}
	pub := recA.Of("iv")
	for i := 1; i < len(pub); i++ {
		if pub[i].Seq <= pub[i-1].Seq || flow.FlowOrder(pub[i-1].Status, pub[i].Status) < 0 {
			t.Fatalf("a published %v: a finished flow moved back", pub)
		}
	}
	if last := pub[len(pub)-1]; last.End != flow.EndExpired || last.Status != flow.StatusFinished {
		t.Fatalf("a's subscribers last got %+v, want the end, keeping ONBOARDING_FINISHED", last)
	}
}
