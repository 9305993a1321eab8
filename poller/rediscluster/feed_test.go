package rediscluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

// flood publishes changes on the channel, as other nodes committing
// without pause do, until stop is called; it returns once something was
// published.
func flood(t *testing.T, srv *redistest.Server) (stop func()) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DisableIdentity: true})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Go(func() {
		for seq := uint64(1); ctx.Err() == nil; seq++ {
			msg, _ := json.Marshal(message{Node: "another/1/node", ID: fmt.Sprint("iv", seq%50), Status: "ID_VALIDATION_FINISHED", Seq: seq})
			if err := rdb.Publish(ctx, "pushgate:changes", msg).Err(); err == nil && seq == 1 {
				close(started)
			}
			time.Sleep(2 * time.Millisecond) // ~500 a second: a read never waits
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			rdb.Close()
		})
	}
	t.Cleanup(stop)
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published within 5s")
	}
	return stop
}

// TestCloseEndsTheFeedUnderAFlood: while other nodes publish changes
// without pause, Close still returns, the flood still running. The
// listener never waits on a read then, so only a check of the context
// between reads ends it.
func TestCloseEndsTheFeedUnderAFlood(t *testing.T) {
	srv := redistest.Start(t)
	n := newNodeWith(t, srv, Config{Secret: testSecret, Logger: quiet})
	drainResyncs(n) // subscribed
	stop := flood(t, srv)
	if c := next(t, n); c.InterviewID == "" {
		t.Fatalf("the node heard %+v, want another node's change", c)
	}
	if _, err := n.Lead(context.Background(), "held"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // generous: without the check, Close waits for the flood to stop
		stop()
		<-closed
		t.Fatalf("Close returned %v after it was called, only once the flood stopped", time.Since(began).Round(time.Millisecond))
	}
	t.Logf("Close under a flood of changes took %v", time.Since(began).Round(time.Millisecond))
	if holder, _ := srv.Do("GET", "pushgate:{held}:lease"); holder != "" {
		t.Fatalf("the lease is still held by %q after Close", holder)
	}
}

// TestCloseWhileRedisHangs: a Redis that takes connections but answers
// nothing holds Close for about two command timeouts: one for the release
// of the leases, one for the goroutines' commands in flight. Four are
// allowed, for a slow machine; a release per lease would take 100.
func TestCloseWhileRedisHangs(t *testing.T) {
	srv := redistest.Start(t)
	n := newNodeWith(t, srv, Config{Secret: testSecret, Logger: quiet})
	drainResyncs(n)
	for i := range 100 {
		if _, err := n.Lead(context.Background(), fmt.Sprint("iv", i)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Pause()
	defer srv.Resume()
	time.Sleep(ttl / 2) // the renewer and the health check are stuck on it too
	began := time.Now()
	n.Close()
	took := time.Since(began)
	t.Logf("Close with Redis hanging took %v (command timeout %v)", took.Round(time.Millisecond), n.cfg.Timeout)
	if limit := 4 * n.cfg.Timeout; took > limit {
		t.Fatalf("Close took %v with Redis hanging, want at most %v", took, limit)
	}
}
