package poller_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
)

// gatedCluster: another node holds every lease; Load takes its snapshot,
// then blocks until gate is closed (once closed, loads do not block).
type gatedCluster struct {
	loaded chan struct{}
	gate   chan struct{}
	feed   chan poller.Change
	mu     sync.Mutex // protects hist
	hist   []flow.Update
}

func (c *gatedCluster) store(u flow.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hist = append(c.hist, u)
}

func (c *gatedCluster) Lead(context.Context, string) (time.Duration, error) { return time.Second, nil }
func (c *gatedCluster) Release(string)                                      {}
func (c *gatedCluster) Commit(context.Context, uint64, flow.Update, bool) ([]flow.Update, error) {
	return nil, nil
}
func (c *gatedCluster) Load(ctx context.Context, id string) (poller.Shared, error) {
	c.mu.Lock()
	h := slices.Clone(c.hist)
	c.mu.Unlock()
	select {
	case c.loaded <- struct{}{}:
	default:
	}
	<-c.gate
	return poller.Shared{History: h, Token: "tok"}, nil
}
func (c *gatedCluster) Share(context.Context, string, string) error { return nil }
func (c *gatedCluster) Changes() <-chan poller.Change               { return c.feed }

// TestChangeHeardDuringALoadIsNotLost: a change heard on the feed while
// the interview is being loaded, which the load's older snapshot lacks,
// leaves the interview stale, so the next read loads it again.
func TestChangeHeardDuringALoadIsNotLost(t *testing.T) {
	x1 := flow.Update{InterviewID: "iv", Status: "UNKNOWN", Seq: 100}
	x2 := flow.Update{InterviewID: "iv", Status: "ID_VALIDATION_FINISHED", Seq: 200}
	c := &gatedCluster{loaded: make(chan struct{}, 1), gate: make(chan struct{}), hist: []flow.Update{x1}, feed: make(chan poller.Change, 1)}
	m := newManager(t, &pollertest.Source{}, &pollertest.Recorder{}, poller.Config{Interval: 50 * time.Millisecond, Cluster: c})
	done := make(chan string)
	go func() { done <- m.SessionToken("iv") }() // a score request: loads iv
	<-c.loaded
	c.store(x2) // committed by the leader meanwhile
	c.feed <- poller.Change{Update: x2, Prev: x1.Seq}
	time.Sleep(50 * time.Millisecond) // received() ran: gap, inactive -> syncGen = 0
	close(c.gate)
	<-done
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		u, err := m.Current(context.Background(), "iv")
		if err != nil {
			t.Fatal(err)
		}
		if u.Status != x2.Status {
			t.Logf("Current = %+v, want %+v", u, x2)
			continue
		}
		return
	}
	t.Fatal("the change heard during the load never shows")
}
