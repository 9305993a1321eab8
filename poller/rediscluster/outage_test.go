package rediscluster

import (
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

// TestFollowerReadsAloneOnceRedisIsGone: node B follows node A, which
// holds the interview's lease (B's watcher reads nothing upstream). When
// Redis goes away, B reads the interview itself as soon as it sees the
// outage, not when A's lease would have lapsed: a change made then
// reaches B's subscribers. The lease here lasts a minute, so waiting it
// out would take far longer than the test allows.
func TestFollowerReadsAloneOnceRedisIsGone(t *testing.T) {
	const interval = 100 * time.Millisecond
	srv := redistest.Start(t)
	nodeOf := func() *Node {
		n, err := New(Config{URL: srv.URL(), Secret: []byte(testSecret), LeaseTTL: time.Minute, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		return n
	}
	srcA, srcB := &pollertest.Source{}, &pollertest.Source{}
	recB := &pollertest.Recorder{}
	a := mustManager(t, srcA, &pollertest.Recorder{}, poller.Config{Interval: interval, Cluster: nodeOf(), Linger: time.Minute})
	t.Cleanup(a.Close)
	b := mustManager(t, srcB, recB, poller.Config{Interval: interval, Cluster: nodeOf(), Linger: time.Minute})
	t.Cleanup(b.Close)
	a.Register("iv", "tok")
	defer a.Watch("iv")() // A leads
	time.Sleep(5 * interval)
	defer b.Watch("iv")()
	time.Sleep(10 * interval)
	if n := srcB.Calls("iv"); n != 0 {
		t.Fatalf("b read the interview %d times while a held its lease, want 0", n)
	}

	srv.Stop()
	srcB.Set("iv", "ID_VALIDATION_FINISHED")
	read := func() bool {
		got := recB.Of("iv")
		return len(got) > 0 && got[len(got)-1].Status == "ID_VALIDATION_FINISHED"
	}
	if !eventually(15*time.Second, read) { // a guard: the lease alone would hold b back a minute
		t.Fatalf("b, cut off from Redis, has not read the interview alone after 15 s (its reads: %d); it waits for a's minute-long lease", srcB.Calls("iv"))
	}
}
