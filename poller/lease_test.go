package poller_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
)

// leases is the shared side of a few test nodes: one lease per interview,
// the stored changes, and a feed per node that hears the others' commits
// lag late (a loaded node, a slow pub/sub).
type leases struct {
	wait time.Duration // what Lead answers a node that does not hold the lease
	lag  time.Duration // how late a node hears another's commit

	mu     sync.Mutex // protects holder and hist
	holder map[string]int
	hist   map[string][]flow.Update
	feeds  []chan poller.Change
}

func newLeases(nodes int, wait, lag time.Duration) *leases {
	l := &leases{wait: wait, lag: lag, holder: map[string]int{}, hist: map[string][]flow.Update{}}
	for range nodes {
		l.feeds = append(l.feeds, make(chan poller.Change, 16))
	}
	return l
}

// node is node i's view of the shared side, its poller.Cluster.
func (l *leases) node(i int) poller.Cluster { return leaseNode{l, i} }

type leaseNode struct {
	l *leases
	i int
}

func (n leaseNode) Lead(_ context.Context, id string) (time.Duration, error) {
	n.l.mu.Lock()
	defer n.l.mu.Unlock()
	if h, ok := n.l.holder[id]; ok && h != n.i {
		return n.l.wait, nil
	}
	n.l.holder[id] = n.i
	return 0, nil
}

func (n leaseNode) Release(id string) {
	n.l.mu.Lock()
	defer n.l.mu.Unlock()
	if h, ok := n.l.holder[id]; ok && h == n.i {
		delete(n.l.holder, id)
	}
}

func (n leaseNode) Commit(_ context.Context, prev uint64, next flow.Update, pushed bool) ([]flow.Update, error) {
	n.l.mu.Lock()
	defer n.l.mu.Unlock()
	h := n.l.hist[next.InterviewID]
	if len(h) > 0 && h[len(h)-1].Seq != prev {
		return slices.Clone(h), nil
	}
	n.l.hist[next.InterviewID] = append(h, next)
	for j, feed := range n.l.feeds {
		if j != n.i {
			c := poller.Change{Update: next, Prev: prev, Pushed: pushed}
			time.AfterFunc(n.l.lag, func() { feed <- c })
		}
	}
	return nil, nil
}

func (n leaseNode) Load(_ context.Context, id string) (poller.Shared, error) {
	n.l.mu.Lock()
	defer n.l.mu.Unlock()
	return poller.Shared{History: slices.Clone(n.l.hist[id]), Token: "tok"}, nil
}

func (n leaseNode) Share(context.Context, string, string) error { return nil }
func (n leaseNode) Changes() <-chan poller.Change               { return n.l.feeds[n.i] }

// TestFinishedFlowIsNotReadAgainByAFollower: two nodes watch an interview,
// node 0 reads it, node 1 follows. When node 0 reads ONBOARDING_FINISHED,
// node 1 hears it only a little later; it must not take the lease node 0
// no longer needs and read the finished flow once more meanwhile. The
// whole cluster makes one upstream call per interval, the last one being
// the one that saw the end.
func TestFinishedFlowIsNotReadAgainByAFollower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		l := newLeases(2, 2*time.Second, 500*time.Millisecond)
		cfg := poller.Config{Interval: time.Second, Jitter: -1}
		lead, follow := &pollertest.Recorder{}, &pollertest.Recorder{}
		cfg.Cluster = l.node(0)
		m0 := newManager(t, src, lead, cfg)
		cfg.Cluster = l.node(1)
		m1 := newManager(t, src, follow, cfg)

		defer m0.Watch("iv")() // reads at 0s, 1s, 2s, 3s: the lease is node 0's
		time.Sleep(1100 * time.Millisecond)
		defer m1.Watch("iv")() // follows at 1.1s, then looks again when the lease may lapse: 3.1s
		time.Sleep(1400 * time.Millisecond)
		src.Set("iv", flow.StatusFinished) // at 2.5s; node 0 reads it at 3s, node 1 hears it at 3.5s
		time.Sleep(10 * time.Second)
		synctest.Wait()

		if got := src.Calls("iv"); got != 4 {
			t.Errorf("%d upstream calls, want 4: one per interval until the read that saw the end", got)
		}
		for i, rec := range []*pollertest.Recorder{lead, follow} {
			if got := rec.Statuses("iv"); !slices.Equal(got, []string{flow.StatusUnknown, flow.StatusFinished}) {
				t.Errorf("node %d published %q, want UNKNOWN then ONBOARDING_FINISHED", i, got)
			}
		}
	})
}
