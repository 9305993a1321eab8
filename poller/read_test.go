package poller_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
)

func TestConcurrentCurrentSharesOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		src.Hold()
		src.Set("a", "ID_VALIDATION_FINISHED")
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{})
		var wg sync.WaitGroup
		results := make([]flow.Update, 100)
		for i := range results {
			wg.Go(func() {
				u, err := m.Current(context.Background(), "a")
				if err != nil {
					t.Error(err)
				}
				results[i] = u
			})
		}
		synctest.Wait()
		src.Release()
		wg.Wait()
		if n := src.Calls("a"); n != 1 {
			t.Fatalf("100 concurrent reads made %d upstream calls, want 1", n)
		}
		for _, u := range results {
			if u != results[0] || u.Status != "ID_VALIDATION_FINISHED" || u.Seq == 0 {
				t.Fatalf("got %+v and %+v, want the same shared result", u, results[0])
			}
		}
		// Within the interval the answer comes from memory.
		if _, err := m.Current(context.Background(), "a"); err != nil || src.Calls("a") != 1 {
			t.Fatalf("read within the interval called upstream again (%d calls, err %v)", src.Calls("a"), err)
		}
		time.Sleep(time.Second)
		if _, err := m.Current(context.Background(), "a"); err != nil || src.Calls("a") != 2 {
			t.Fatalf("read after the interval: %d calls (want 2), err %v", src.Calls("a"), err)
		}
	})
}

func TestCallerGivingUpDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		src.Hold()
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		errA := make(chan error, 1)
		go func() {
			_, err := m.Current(ctx, "a")
			errA <- err
		}()
		synctest.Wait()
		resB := make(chan flow.Update, 1)
		go func() {
			u, _ := m.Current(context.Background(), "a")
			resB <- u
		}()
		synctest.Wait()
		cancel()
		if err := <-errA; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller got %v", err)
		}
		src.Release()
		if u := <-resB; u.Status != "UNKNOWN" {
			t.Fatalf("second caller got %+v, want the shared result", u)
		}
		if n := src.Calls("a"); n != 1 {
			t.Fatalf("%d upstream calls, want 1", n)
		}
	})
}

func TestCallTimeoutFreesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		src.Hold() // never opened: upstream hangs
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{CallTimeout: 2 * time.Second})
		start := time.Now()
		_, err := m.Current(context.Background(), "a")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*time.Second {
			t.Fatalf("hanging upstream: err %v after %v, want deadline exceeded after 2s", err, time.Since(start))
		}
	})
}

func TestBackoffKeepsLastStatusAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := &pollertest.Source{}, &pollertest.Recorder{}
		m := newManager(t, src, rec, poller.Config{Interval: time.Second, BackoffMax: 8 * time.Second})
		defer m.Watch("a")()
		time.Sleep(1500 * time.Millisecond)
		before := src.Calls("a")
		src.SetErr(errors.New("upstream: unavailable"))
		time.Sleep(60 * time.Second)
		failing := src.Calls("a") - before
		// Waits of at least 0.5, 1, 2, 4, 4, ... seconds: at most 18 calls
		// in 60s, against 60 without backoff.
		if failing < 8 || failing > 18 {
			t.Fatalf("%d calls in 60s of failures, want 8..18 with backoff capped at 8s", failing)
		}
		u, err := m.Current(context.Background(), "a")
		if err != nil || u.Status != "UNKNOWN" {
			t.Fatalf("during the outage Current = %+v, %v; want the last known status", u, err)
		}
		src.SetErr(nil)
		src.Set("a", "ID_VALIDATION_FINISHED")
		time.Sleep(8*time.Second + 100*time.Millisecond)
		synctest.Wait()
		if got := rec.Of("a"); len(got) != 2 || got[1].Status != "ID_VALIDATION_FINISHED" {
			t.Fatalf("after recovery published %v, want the pending change within one backoff cap", got)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{Interval: time.Second, Jitter: -1})
		defer m.Watch("a")()
		time.Sleep(1500 * time.Millisecond)
		src.SetErr(retryErr{20 * time.Second})
		time.Sleep(time.Second) // the failing read
		n := src.Calls("a")
		src.SetErr(nil)
		time.Sleep(19 * time.Second)
		if got := src.Calls("a"); got != n {
			t.Fatalf("%d calls before Retry-After passed", got-n)
		}
		time.Sleep(time.Second) // the retry is due 20s after the failed read
		if got := src.Calls("a"); got != n+1 {
			t.Fatalf("%d calls after Retry-After, want 1", got-n)
		}
	})
}

func TestConcurrencyCapHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		src.Hold()
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{MaxConcurrent: 3})
		for i := range 20 {
			defer m.Watch(fmt.Sprint("i", i))()
		}
		time.Sleep(time.Second)
		synctest.Wait()
		inflight, maxInflight := src.InFlight()
		src.Release()
		time.Sleep(time.Second)
		if inflight != 3 || maxInflight != 3 {
			t.Fatalf("in flight %d (max %d), want the cap of 3", inflight, maxInflight)
		}
	})
}

// TestNoCallsWhileBackingOffBeforeAnyStatus: with nothing known yet, reads
// during a backoff answer the last error without calling upstream.
func TestNoCallsWhileBackingOffBeforeAnyStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		src.SetErr(retryErr{time.Minute})
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{})
		for range 20 {
			if _, err := m.Current(context.Background(), "a"); err == nil {
				t.Fatal("Current succeeded while upstream fails")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n := src.Calls("a"); n != 1 {
			t.Fatalf("20 reads during a 60s Retry-After made %d upstream calls, want 1", n)
		}
		src.SetErr(nil)
		time.Sleep(time.Minute)
		if u, err := m.Current(context.Background(), "a"); err != nil || u.Status != "UNKNOWN" || src.Calls("a") != 2 {
			t.Fatalf("after Retry-After: %+v, %v, %d calls", u, err, src.Calls("a"))
		}
	})
}

// TestCeilingWaitDoesNotAbandonCalls: waiting under the call ceiling must
// not eat the time of the call: every call sent upstream gets its answer.
func TestCeilingWaitDoesNotAbandonCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &slowSource{Source: &pollertest.Source{}, delay: 600 * time.Millisecond}
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{Ceiling: poller.NewCeiling(2), CallTimeout: time.Second})
		var wg sync.WaitGroup
		var ok atomic.Int64
		for _, id := range []string{"a", "b", "c"} {
			m.Register(id, "tok")
			wg.Go(func() {
				if _, err := m.Current(context.Background(), id); err == nil {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		calls := src.Calls("a") + src.Calls("b") + src.Calls("c")
		if int64(calls) != ok.Load() || ok.Load() < 2 {
			t.Fatalf("%d upstream calls for %d answers: calls were sent and then abandoned", calls, ok.Load())
		}
	})
}

type slowSource struct {
	*pollertest.Source
	delay time.Duration
}

func (s *slowSource) Status(ctx context.Context, id, token string) (string, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return s.Source.Status(ctx, id, token)
}
