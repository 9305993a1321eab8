package poller_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
)

// The tests of this file run an upstream that hangs or answers 503 and
// then comes back, in a synctest bubble: time is the bubble's, so the
// intervals are exact. Jitter is off; the Manager starts at 0 s, so its
// probes tick at whole seconds.

var errUnavailable = errors.New("HTTP 503")

// fault is one way the upstream fails, and how it comes back.
type fault struct {
	name string
	on   func(*pollertest.Upstream)
	off  func(*pollertest.Upstream)
	// seen is how long after the fault a probe sees it: the next tick,
	// and for a hang the probe's CallTimeout on top.
	seen time.Duration
}

var faults = []fault{
	{"hang", (*pollertest.Upstream).Hold, (*pollertest.Upstream).Heal, 5*time.Second + time.Second},
	{"503", func(u *pollertest.Upstream) { u.SetErr(errUnavailable) }, func(u *pollertest.Upstream) { u.SetErr(nil) }, time.Second},
}

// sleepUntil sleeps until the bubble's clock shows at after start, then
// lets every goroutine of the bubble settle.
func sleepUntil(start time.Time, at time.Duration) {
	time.Sleep(time.Until(start.Add(at)))
	synctest.Wait()
}

// TestReadinessFollowsTheUpstreamWithoutTraffic: with no watcher and no
// read at all, the probe alone turns the node unready during a hang (its
// timeout counts) or a run of 503s, costs one call per interval for the
// whole node, and turns it ready within two intervals of the recovery.
func TestReadinessFollowsTheUpstreamWithoutTraffic(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				u := &pollertest.Upstream{}
				m := newManager(t, u, &pollertest.Recorder{}, poller.Config{Jitter: -1})
				sleepUntil(start, 2500*time.Millisecond)
				if err := m.Ready(); err != nil {
					t.Fatalf("Ready() = %v with the upstream up", err)
				}
				probesBefore := u.Probes()
				f.on(u)
				sleepUntil(start, 2500*time.Millisecond+f.seen)
				if m.Ready() == nil {
					t.Fatalf("ready %v into the %s, want unready once a probe saw it", f.seen, f.name)
				}
				const healAt = 9300 * time.Millisecond
				sleepUntil(start, healAt)
				if m.Ready() == nil {
					t.Fatalf("ready again before the upstream came back")
				}
				probes := u.Probes() - probesBefore // ticks 3 s to 9 s
				f.off(u)
				sleepUntil(start, healAt+2*time.Second)
				if err := m.Ready(); err != nil {
					t.Fatalf("Ready() = %v two intervals after the upstream came back", err)
				}
				if probes < 6 || probes > 8 {
					t.Errorf("%d probes in 6.8 s of %s at a 1 s interval, want about one per interval", probes, f.name)
				}
				if n := u.Total(); n != 0 {
					t.Errorf("%d status calls, want none: the probe alone follows the upstream", n)
				}
			})
		})
	}
}

// TestProbeCostsOneCallPerIntervalForTheNode: while the upstream fails,
// the node probes once per interval however many interviews it watches;
// while their reads succeed, it never probes.
func TestProbeCostsOneCallPerIntervalForTheNode(t *testing.T) {
	for _, watched := range []int{0, 20} {
		t.Run(fmt.Sprint(watched, " watched"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				u := &pollertest.Upstream{}
				m := newManager(t, u, &pollertest.Recorder{}, poller.Config{Jitter: -1})
				for i := range watched {
					defer m.Watch(fmt.Sprint("iv", i))()
				}
				sleepUntil(start, 3500*time.Millisecond)
				if n := u.Probes(); watched > 0 && n != 0 {
					t.Errorf("%d probes while %d interviews were read every second, want none", n, watched)
				}
				u.SetErr(errUnavailable)
				before := u.Probes()
				sleepUntil(start, 13500*time.Millisecond)
				if n := u.Probes() - before; n < 9 || n > 11 {
					t.Errorf("%d probes in 10 s of 503s with %d interviews watched, want 10: one per interval for the node", n, watched)
				}
			})
		})
	}
}

// TestRecoveryReadsEveryWatchedInterview: after 10 s of 503s every
// watched interview backs off, some for many seconds; once the probe sees
// the upstream back, all 50 are read within one interval, under the
// ceiling and the cap on calls in flight, and get the change made
// meanwhile.
func TestRecoveryReadsEveryWatchedInterview(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, ceiling, slots = 50, 100.0, 4
		start := time.Now()
		u := &pollertest.Upstream{}
		reg := prometheus.NewRegistry()
		m := newManager(t, u, &pollertest.Recorder{}, poller.Config{Jitter: -1, Ceiling: poller.NewCeiling(ceiling), MaxConcurrent: slots, Metrics: reg})
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprint("iv", i)
			defer m.Watch(ids[i])()
		}
		sleepUntil(start, 2500*time.Millisecond)
		u.SetErr(errUnavailable)
		for _, id := range ids {
			u.Set(id, "ID_VALIDATION_FINISHED")
		}
		sleepUntil(start, 12500*time.Millisecond)
		u.SetErr(nil)
		sleepUntil(start, 13*time.Second) // the probe of 13 s sees it back
		if m.Ready() != nil || pollertest.Metric(t, reg, "pushgate_upstream_recoveries_total") != 1 {
			t.Fatalf("no recovery seen by the probe of 13 s (ready: %v)", m.Ready())
		}
		callsBefore := u.Total()
		sleepUntil(start, 14*time.Second)
		late := 0
		for _, id := range ids {
			if last, _ := m.Last(id); last.Status != "ID_VALIDATION_FINISHED" {
				late++
			}
		}
		if late > 0 {
			t.Errorf("%d of %d watched interviews not read within one interval of the recovery", late, n)
		}
		if calls := u.Total() - callsBefore; calls > int(ceiling)+int(ceiling/10) {
			t.Errorf("%d calls in the interval after the recovery, over the ceiling of %v/s", calls, ceiling)
		}
		if _, most := u.InFlight(); most > slots {
			t.Errorf("%d calls in flight at once, over MaxConcurrent %d", most, slots)
		}
		if u.IdleClosed() != 1 {
			t.Errorf("idle connections closed %d times, want once, at the recovery", u.IdleClosed())
		}
	})
}

// TestRecoveryCutsCallsStuckInAHang: a read that began during a hang
// stays stuck after the upstream is back (a dead connection), until its
// CallTimeout. The recovery cancels it and reads again at once. In a hang
// longer than CallTimeout, the reads' and probes' timeouts made the node
// unready meanwhile; in a shorter one, the recovery is a probe answered
// while an earlier one hangs.
func TestRecoveryCutsCallsStuckInAHang(t *testing.T) {
	for _, tc := range []struct {
		name          string
		hold, heal    time.Duration // when the hang begins and ends
		stuckRead     time.Duration // a read began then, and hangs at heal
		unreadyAt     time.Duration // the node is unready then; 0: never
		stuckUntilOwn time.Duration // when that read would end by itself
	}{
		// A read at 0 s, stuck until 5 s, then one at 5.5..6 s after the
		// backoff; probes fail from 6 s.
		{"longer than CallTimeout", 0, 7500 * time.Millisecond, 6 * time.Second, 5500 * time.Millisecond, 10500 * time.Millisecond},
		// A read at 0.5 s; the probes of 1 s and 2 s hang, that of 3 s
		// answers.
		{"shorter than CallTimeout", 500 * time.Millisecond, 2500 * time.Millisecond, 500 * time.Millisecond, 0, 5500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				u := &pollertest.Upstream{}
				m := newManager(t, u, &pollertest.Recorder{}, poller.Config{Jitter: -1, CallTimeout: 5 * time.Second})
				sleepUntil(start, tc.hold)
				u.Hold()
				defer m.Watch("a")()
				if tc.unreadyAt > 0 {
					sleepUntil(start, tc.unreadyAt)
					if m.Ready() == nil {
						t.Fatal("ready after a read timed out in the hang: its timeout must count")
					}
				}
				sleepUntil(start, tc.heal)
				if now, _ := u.InFlight(); now != 1 {
					t.Fatalf("%d status calls in flight, want the read stuck since %v", now, tc.stuckRead)
				}
				u.Heal()
				u.Set("a", "ID_VALIDATION_FINISHED")
				sleepUntil(start, tc.heal+2*time.Second)
				if last, _ := m.Last("a"); last.Status != "ID_VALIDATION_FINISHED" {
					t.Fatalf("status %q two intervals after the upstream came back, want the change: the read stuck until %v was not cut", last.Status, tc.stuckUntilOwn)
				}
				if now, _ := u.InFlight(); now != 0 {
					t.Errorf("%d status calls still in flight after the recovery", now)
				}
				if err := m.Ready(); err != nil {
					t.Errorf("Ready() = %v after the recovery", err)
				}
			})
		})
	}
}

// clockedRecorder notes when each status was published, on the bubble's
// clock.
type clockedRecorder struct {
	mu sync.Mutex
	at map[string]time.Time // status -> first published
}

func (r *clockedRecorder) Publish(u flow.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.at[u.Status]; !ok {
		r.at[u.Status] = time.Now()
	}
}

func (r *clockedRecorder) when(status string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[status]
	return at, ok
}

// TestChangeAfterAnOutageWithinOneAndAHalfIntervals pins the bound
// docs/failures.md states: a change made while the upstream failed is
// published within one and a half intervals of the upstream's return
// (up to one for the next probe to see it back, up to half of one to
// read every watched interview), wherever in the probe's interval the
// return falls, after a hang or a run of 503s. The upstream answers at
// once here; a real call and the delivery to the browser come on top.
func TestChangeAfterAnOutageWithinOneAndAHalfIntervals(t *testing.T) {
	const interval = time.Second
	for _, f := range faults {
		for _, offset := range []time.Duration{time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, 999 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s ends %v after a probe", f.name, offset), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					start := time.Now()
					u := &pollertest.Upstream{}
					rec := &clockedRecorder{at: map[string]time.Time{}}
					m := newManager(t, u, rec, poller.Config{Jitter: -1, Interval: interval})
					defer m.Watch("a")()
					sleepUntil(start, 2500*time.Millisecond)
					f.on(u)
					sleepUntil(start, 3200*time.Millisecond)
					u.Set("a", "ID_VALIDATION_FINISHED")
					heal := 9*time.Second + offset
					sleepUntil(start, heal)
					if _, ok := rec.when("ID_VALIDATION_FINISHED"); ok {
						t.Fatal("the change was published during the outage")
					}
					f.off(u)
					sleepUntil(start, heal+3*interval)
					at, ok := rec.when("ID_VALIDATION_FINISHED")
					if !ok {
						t.Fatalf("the change never published within three intervals of the upstream's return")
					}
					if took := at.Sub(start.Add(heal)); took > interval*3/2 {
						t.Errorf("the change published %v after the upstream came back, want within one and a half intervals (%v)", took, interval*3/2)
					}
				})
			})
		}
	}
}
