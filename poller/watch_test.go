package poller_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
)

func TestManyWatchersShareOnePollerAtOneCallPerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := &pollertest.Source{}, &pollertest.Recorder{}
		m := newManager(t, src, rec, poller.Config{Interval: time.Second, Jitter: 0.1})
		for range 50 {
			defer m.Watch("a")()
		}
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		// First read at once, then one every 1s to 1.1s.
		if n := src.Calls("a"); n < 9 || n > 11 {
			t.Fatalf("50 watchers over 10 intervals made %d upstream calls, want 9..11", n)
		}
		if got := rec.Of("a"); len(got) != 1 || got[0].Status != "UNKNOWN" {
			t.Fatalf("published %v, want one UNKNOWN", got)
		}
	})
}

func TestPollerStopsAfterLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		reg := prometheus.NewRegistry()
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{Interval: time.Second, Linger: 10 * time.Second, Jitter: -1, Metrics: reg})
		unwatch := m.Watch("a")
		time.Sleep(2500 * time.Millisecond)
		unwatch()
		unwatch() // idempotent
		time.Sleep(9 * time.Second)
		if pollertest.Pollers(t, reg) != 1 {
			t.Fatal("poller stopped before the linger period ended")
		}
		// A watcher coming back within the linger keeps the same poller.
		unwatch = m.Watch("a")
		time.Sleep(5 * time.Second)
		unwatch()
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if pollertest.Pollers(t, reg) != 0 {
			t.Fatal("poller still runs after the linger period")
		}
		n := src.Calls("a")
		time.Sleep(time.Minute)
		if got := src.Calls("a"); got != n {
			t.Fatalf("upstream calls went on after the poller stopped: %d -> %d", n, got)
		}
	})
}

func TestPollerStopsOnFinishedAndDoesNotRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := &pollertest.Source{}, &pollertest.Recorder{}
		reg := prometheus.NewRegistry()
		m := newManager(t, src, rec, poller.Config{Interval: time.Second, Metrics: reg})
		defer m.Watch("a")()
		time.Sleep(1500 * time.Millisecond)
		src.Set("a", flow.StatusFinished)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if pollertest.Pollers(t, reg) != 0 {
			t.Fatal("poller runs after ONBOARDING_FINISHED")
		}
		n := src.Calls("a")
		defer m.Watch("a")() // a late subscriber of a finished flow
		u, err := m.Current(context.Background(), "a")
		time.Sleep(time.Minute)
		if all := m.Since("a", 0); err != nil || !u.Finished() || len(all) != 2 || all[1] != u {
			t.Fatalf("Current = %+v, %v; want ONBOARDING_FINISHED as the second change", u, err)
		}
		if got := src.Calls("a"); got != n || pollertest.Pollers(t, reg) != 0 {
			t.Fatalf("a finished interview was polled again: calls %d -> %d", n, got)
		}
	})
}
