package main

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// skewInterval is the poll interval of the clock skew test; its changes
// come five intervals apart.
const skewInterval = 500 * time.Millisecond

// TestClusterClockSkew: three nodes whose clocks disagree by up to 4 s
// (+2 s, 0, -2 s: the clock event ids are stamped with, moved by a test
// build), while Redis is down for 15 s, the nodes numbering changes alone.
// 60 interviews walk Incode's flow, a change every 2.5 s, so most of it,
// the end included, happens during the outage; two tabs of each move to
// the next node every 2-3 s with Last-Event-ID. No tab gets a status
// twice, an id at or below the one it held, or a status earlier in the
// flow than one it got; every tab gets the end of its flow; and every
// status set outside the outage reaches every tab. Inside it, a tab may
// skip an intermediate status that the nodes it was on never saw (counted
// and logged).
func TestClusterClockSkew(t *testing.T) {
	testenv.SkipUnlessLong(t, "15 s of Redis down with skewed clocks")
	bin := buildSkewed(t)
	c := newCluster(t, 3, "-poll-interval", skewInterval.String())
	for i, offset := range []string{"2s", "0s", "-2s"} {
		n := c.nodes[i]
		n.kill()
		n.bin, n.env = bin, []string{"PUSHGATE_TEST_CLOCK_OFFSET=" + offset}
		n.restart(t)
	}
	sessions := c.sessions(60)
	flow := simulator.Path(simulator.OrderIncode)
	changes := newChangeLog(flow, sessions)
	move := tabPolicy{hold: func() time.Duration { return 2*time.Second + rand.N(time.Second) }}
	var tabs []*tab
	for i, s := range sessions {
		for k := range 2 {
			tabs = append(tabs, c.openTab(s, (i+k)%len(c.nodes), move))
		}
	}
	waitFirstEvent(t, tabs)
	time.Sleep(2 * skewInterval)

	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.InterviewID
	}
	began := time.Now()
	at := func(d time.Duration) { time.Sleep(time.Until(began.Add(d))) }
	var outage window
	for k := 1; k < len(flow); k++ {
		at(time.Duration(k) * 5 * skewInterval)
		if k == 1 {
			c.redis.Stop()
			outage = window{"redis down, clocks apart", time.Now(), time.Time{}}
		}
		if err := changes.advance(c, ids); err != nil {
			t.Fatal(err)
		}
	}
	at(time.Duration(len(flow))*5*skewInterval + 2500*time.Millisecond) // 15 s of outage or more
	c.redis.Restart()
	outage.to = time.Now()
	left := waitTabs(tabs, time.Now().Add(20*time.Second))
	c.cancel()
	c.wg.Wait()

	windows := []window{{outage.name, outage.from.Add(-2 * skewInterval), outage.to.Add(2 * skewInterval)}}
	got := tally(tabs, changes, windows, []window{outage})
	t.Logf("clock skew summary: %d interviews x 2 tabs, clocks +2s/0/-2s, interval %v, Redis down %v: %v; %d tabs unfinished after 20 s",
		len(sessions), skewInterval, outage.to.Sub(outage.from).Round(100*time.Millisecond), got, left)
	if got.anomalies != (anomalies{}) || got.unfinished > 0 {
		t.Errorf("want 0 duplicates, reorders, regressions, unfinished tabs and lost changes; got %v; first offenders:\n%s", got, strings.Join(got.bad, "\n"))
	}
}

// skewBinaries is pushgate built with -tags skewtest: a binary that moves
// the clock it stamps event ids with by PUSHGATE_TEST_CLOCK_OFFSET.
var skewBinaries = &binaries{pattern: "pushgate-skew-test-", builds: [][]string{{"-tags", "skewtest", "."}}}

// buildSkewed builds that binary once per test run, and returns its path.
func buildSkewed(t *testing.T) string { return filepath.Join(skewBinaries.in(t), "pushgate") }
