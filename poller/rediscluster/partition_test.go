package rediscluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
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
func (p *partitioned) Commit(ctx context.Context, prev uint64, next poller.Update, pushed bool) ([]poller.Update, error) {
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
	srv := redistest.Start(t)
	const interval = 100 * time.Millisecond
	src := &source{status: map[string]string{}, calls: map[string]int{}}
	pa := newPartitioned(newNode(t, srv))
	recA, recB := &recorder{}, &recorder{}
	a, err := poller.New(src, recA, poller.Config{Interval: interval, Cluster: pa, Linger: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b, err := poller.New(src, recB, poller.Config{Interval: interval, Cluster: newNode(t, srv), Linger: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer pa.stop()
	defer a.Close()
	defer b.Close()

	src.set("iv", "UNKNOWN")
	a.Register("iv", "tok")
	defer a.Watch("iv")()
	time.Sleep(5 * interval)
	if u, err := b.Current(context.Background(), "iv"); err != nil || u.Status != "UNKNOWN" {
		t.Fatalf("b.Current = %+v, %v", u, err)
	}

	pa.off.Store(true) // A alone
	src.set("iv", "ID_VALIDATION_FINISHED")
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
	t.Logf("a: %+v  b: %+v  a published %v  b published %v", ua, ub, recA.of("iv"), recB.of("iv"))
	if ub != ua || ub.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("2s after Redis came back, b serves %+v while a serves %+v (upstream: ID_VALIDATION_FINISHED)", ub, ua)
	}
}

// TestLaterClusterChangeWinsOverALocalNumber: a change numbered alone
// during an outage can outnumber a later change the cluster committed
// (clock skew, or a lagging upstream replica). Once back, both nodes end
// on the later status of the flow, with the same id, and the node cut off
// publishes it to its subscribers.
func TestLaterClusterChangeWinsOverALocalNumber(t *testing.T) {
	srv := redistest.Start(t)
	const interval = 100 * time.Millisecond
	srcA := &source{status: map[string]string{}, calls: map[string]int{}}
	srcB := &source{status: map[string]string{}, calls: map[string]int{}}
	pa := newPartitioned(newNode(t, srv))
	recA, recB := &recorder{}, &recorder{}
	a, err := poller.New(srcA, recA, poller.Config{Interval: interval, Cluster: pa, Linger: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b, err := poller.New(srcB, recB, poller.Config{Interval: interval, Cluster: newNode(t, srv), Linger: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer pa.stop()
	defer a.Close()
	defer b.Close()
	srcA.set("iv", "UNKNOWN")
	srcB.set("iv", "UNKNOWN")
	b.Register("iv", "tok")
	defer b.Watch("iv")()
	time.Sleep(5 * interval)
	defer a.Watch("iv")()
	time.Sleep(5 * interval)

	pa.off.Store(true)
	srcB.set("iv", "FACE_VALIDATION_FINISHED") // B (leader) commits this first
	time.Sleep(3 * interval)
	srcA.set("iv", "ID_VALIDATION_FINISHED") // A, alone, reads a lagging answer later
	time.Sleep(3 * interval)
	pa.heal()
	time.Sleep(2 * time.Second)
	ua, _ := a.Last("iv")
	ub, _ := b.Last("iv")
	t.Logf("a published %v\nb published %v", recA.of("iv"), recB.of("iv"))
	if ua != ub || ua.Status != "FACE_VALIDATION_FINISHED" {
		t.Fatalf("after the resync a serves %+v, b serves %+v; want both on FACE_VALIDATION_FINISHED with one id", ua, ub)
	}
	pubA := recA.of("iv")
	if last := pubA[len(pubA)-1]; last.Status != "FACE_VALIDATION_FINISHED" {
		t.Fatalf("a's subscribers last got %+v, want FACE_VALIDATION_FINISHED", last)
	}
	for i := 1; i < len(pubA); i++ {
		if pubA[i].Seq <= pubA[i-1].Seq || pubA[i].Status == pubA[i-1].Status {
			t.Fatalf("a published %v: want increasing ids and no status twice in a row", pubA)
		}
	}
}

type needsToken struct{ *source }

func (s needsToken) Status(ctx context.Context, id, token string) (string, error) {
	if token == "" {
		return "", context.DeadlineExceeded // stands for upstream.ErrNoSession
	}
	return s.source.Status(ctx, id, token)
}

// TestTokenRegisteredDuringAnOutageIsSharedOnceBack: a session registered
// while Redis was out of reach has its token shared once it is back, so a
// node where the browser's stream lands can read the status.
func TestTokenRegisteredDuringAnOutageIsSharedOnceBack(t *testing.T) {
	srv := redistest.Start(t)
	const interval = 100 * time.Millisecond
	src := needsToken{&source{status: map[string]string{"iv": "UNKNOWN"}, calls: map[string]int{}}}
	pa := newPartitioned(newNode(t, srv))
	a, err := poller.New(src, &recorder{}, poller.Config{Interval: interval, Cluster: pa})
	if err != nil {
		t.Fatal(err)
	}
	b, err := poller.New(src, &recorder{}, poller.Config{Interval: interval, Cluster: newNode(t, srv)})
	if err != nil {
		t.Fatal(err)
	}
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
	src := &source{status: map[string]string{"iv": "UNKNOWN"}, calls: map[string]int{}}
	na := newNode(t, srv)
	ca := &crashable{partitioned: newPartitioned(na)}
	recB := &recorder{}
	a, _ := poller.New(src, &recorder{}, poller.Config{Interval: interval, Cluster: ca, Linger: time.Minute})
	b, _ := poller.New(src, recB, poller.Config{Interval: interval, Cluster: newNode(t, srv), Linger: time.Minute})
	defer ca.stop()
	defer b.Close()
	a.Register("iv", "tok")
	defer a.Watch("iv")()
	time.Sleep(3 * interval)
	defer b.Watch("iv")()
	time.Sleep(5 * interval)
	holder, _ := srv.Do("GET", "pushgate:{iv}:lease")
	t.Logf("holder before crash a=%v", holder == na.ID())
	ca.dead.Store(true)
	ca.off.Store(true)
	kill(na)
	a.Close()
	died := time.Now()
	src.set("iv", "ID_VALIDATION_FINISHED")
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
