package rediscluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

// TestReshardIsNoOutage: a Redis Cluster moving a third of its slots,
// keys and all, while a node holds leases and stores tokens there. The
// client follows ASK and MOVED: the node never finds Redis out of reach,
// keeps every lease, and reads back every token.
func TestReshardIsNoOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster: not with -short")
	}
	rc := redistest.StartCluster(t)
	n, reg := newNodeOn(t, Config{URL: rc.URL(), Cluster: true})
	ctx := context.Background()
	const interviews = 300
	for i := range interviews {
		id := fmt.Sprintf("iv-%d", i)
		if wait, err := n.Lead(ctx, id); err != nil || wait != 0 {
			t.Fatalf("Lead(%s) = %v, %v", id, wait, err)
		}
		if err := n.Share(ctx, id, "token-"+id); err != nil {
			t.Fatal(err)
		}
	}

	var degraded atomic.Bool
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if n.Degraded() != "" {
					degraded.Store(true)
				}
			}
		}
	}()
	masters := rc.Masters()
	from := rc.MasterOf("pushgate:{iv-0}:lease")
	on := map[string]bool{} // the interviews whose keys are on from
	for i := range interviews {
		id := fmt.Sprintf("iv-%d", i)
		on[id] = rc.MasterOf("pushgate:{"+id+"}:lease") == from
	}
	to := masters[0]
	if to == from {
		to = masters[1]
	}
	rc.Reshard(from, to, 2000)
	time.Sleep(3 * ttl) // renewals on the moved slots
	close(stop)
	<-watched

	if degraded.Load() {
		t.Error("the node found Redis out of reach while the cluster resharded")
	}
	for _, cause := range []string{causeFailover, causeRestart, causeOutage} {
		if got := pollertest.Metric(t, reg, "pushgate_cluster_recoveries_total", "cause", cause); got != 0 {
			t.Errorf("recoveries{cause=%q} = %v during a reshard, want 0", cause, got)
		}
	}
	if lost := pollertest.Metric(t, reg, "pushgate_cluster_leases_total", "event", "lost"); lost != 0 {
		t.Errorf("%v leases lost during the reshard, want 0", lost)
	}
	for i := range interviews {
		id := fmt.Sprintf("iv-%d", i)
		if holder, err := n.rdb.Get(ctx, n.key(id, "lease")).Result(); err != nil || holder != n.ID() {
			t.Fatalf("lease of %s after the reshard: %q, %v; want still this node's", id, holder, err)
		}
		if sh, err := n.Load(ctx, id); err != nil || sh.Token != "token-"+id {
			t.Fatalf("Load(%s) after the reshard = %+v, %v; want its token", id, sh, err)
		}
	}
	moved := 0
	for id, was := range on {
		if was && rc.MasterOf("pushgate:{"+id+"}:lease") == to {
			moved++
		}
	}
	if moved == 0 {
		t.Fatalf("no interview's keys moved from %s to %s: the reshard tested nothing", from, to)
	}
	t.Logf("%d of %d interviews' keys moved with the slots", moved, interviews)
}
