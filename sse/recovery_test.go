package sse_test

import (
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// The tests of this file take the whole upstream away through the
// simulator's faults, and bring it back: /readyz follows without any
// traffic, and every interview is read soon after the upstream is back.

// TestReadyzFollowsTheUpstreamWithoutTraffic: with no session, no stream
// and no poll, /readyz turns 503 during a hang (the probe's timeout
// counts) and during 503s, and 200 again within two probe intervals of
// the recovery, at one probe per interval.
func TestReadyzFollowsTheUpstreamWithoutTraffic(t *testing.T) {
	const interval, callTimeout = 100 * time.Millisecond, 500 * time.Millisecond
	const slack = 3 * time.Second // for a loaded machine: the poller's tests time it exactly
	g := newGateway(t, options{interval: interval, poller: poller.Config{CallTimeout: callTimeout}})
	ready := func() bool { code, _, _ := g.get("/readyz", nil); return code == 200 }
	unready := func() bool { return !ready() }
	eventually(t, "/readyz 200 at start", ready)
	for _, tc := range []struct {
		name   string
		faults simulator.Faults
		seen   time.Duration // a probe sees the fault within this
	}{
		{"hang", simulator.Faults{Hang: true}, interval + callTimeout},
		{"503", simulator.Faults{ErrorRate: 1, Status: 503}, interval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := g.sim.Stats()
			g.sim.SetFaults(tc.faults)
			began := time.Now()
			eventuallyWithin(t, tc.seen+slack, "/readyz 503 during the "+tc.name, unready)
			t.Logf("%s: /readyz 503 after %v", tc.name, time.Since(began).Round(time.Millisecond))
			time.Sleep(time.Second)
			if ready() {
				t.Fatalf("/readyz 200 during the %s", tc.name)
			}
			probes := g.sim.Stats().StatusNoToken - before.StatusNoToken
			failing := time.Since(began)
			g.sim.ClearFaults()
			cleared := time.Now()
			eventuallyWithin(t, 2*interval+slack, "/readyz 200 after the "+tc.name, ready)
			t.Logf("%s: /readyz 200 %v after the upstream came back; %d probes in %v", tc.name, time.Since(cleared).Round(time.Millisecond), probes, failing.Round(time.Millisecond))
			if most := int64(failing/interval) + 2; probes < 3 || probes > most {
				t.Errorf("%d probes in %v of %s at a %v interval, want about one per interval (at most %d)", probes, failing, tc.name, interval, most)
			}
			if st := g.sim.Stats(); st.Start != 0 || st.Status != st.StatusNoToken {
				t.Errorf("the simulator saw %+v: want probes only", st)
			}
		})
	}
}

// TestEveryInterviewReadSoonAfterAnOutage: 20 watched interviews lose the
// upstream for 4 s (a hang, 503s, malformed answers) and back off, by 3 s
// and more at a 100 ms interval with the default BackoffMax; a change is
// made to each meanwhile. Once the upstream is back, every interview has
// its change within a few intervals: the probe sees the recovery, the
// reads stuck in the hang (which would hang up to 6 s) are cut, and the
// backoffs are lifted.
func TestEveryInterviewReadSoonAfterAnOutage(t *testing.T) {
	const n, interval, outage, timeout = 20, 100 * time.Millisecond, 4 * time.Second, 6 * time.Second
	for _, tc := range []struct {
		name   string
		faults simulator.Faults
	}{
		{"hang", simulator.Faults{Hang: true}},
		{"503", simulator.Faults{ErrorRate: 1, Status: 503}},
		{"malformed", simulator.Faults{MalformedRate: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each with a gateway and simulator of its own, waiting out its outage
			g := newGateway(t, options{interval: interval, linger: time.Minute, upstreamTimeout: timeout})
			ids := make([]string, n)
			for i := range ids {
				ids[i] = g.start().InterviewID
				defer g.statuses.Watch(ids[i])()
			}
			eventually(t, "every interview read", func() bool {
				for _, id := range ids {
					if _, ok := g.statuses.Last(id); !ok {
						return false
					}
				}
				return true
			})
			g.sim.SetFaults(tc.faults)
			time.Sleep(outage)
			for _, id := range ids {
				g.setStatus(id, "ID_VALIDATION_FINISHED")
			}
			g.sim.ClearFaults()
			cleared := time.Now()
			eventuallyWithin(t, 10*time.Second, "every interview's change after the "+tc.name, func() bool {
				for _, id := range ids {
					if u, _ := g.statuses.Last(id); u.Status != "ID_VALIDATION_FINISHED" {
						return false
					}
				}
				return true
			})
			took := time.Since(cleared)
			t.Logf("%s: all %d interviews had the change %v after the upstream came back", tc.name, n, took.Round(time.Millisecond))
			// Two intervals for the probe to see it, one to read every
			// interview, and slack for a loaded machine (the poller's tests
			// time it exactly); without the recovery it takes seconds.
			if want := 3*interval + 1500*time.Millisecond; took > want {
				t.Errorf("the last interview had its change %v after the upstream came back, want within %v", took, want)
			}
		})
	}
}
