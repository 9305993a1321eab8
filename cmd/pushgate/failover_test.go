package main

// Redis failovers under load: Sentinel promoting a replica, and a Redis
// Cluster promoting one of a killed master's. Like the cluster tests, they
// skip when redis-server is missing, except under CI=true.

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
	"github.com/pushgate/pushgate/relay/relaytest"
	"github.com/pushgate/pushgate/upstream/simulator"
)

const (
	failoverInterviews = 150
	failoverTabs       = 3
	// failoverBackWithin bounds the time from the promotion until the
	// cluster is back to one upstream status call per interview per
	// interval (at most failoverCallRate).
	failoverBackWithin = 10 * time.Second
	failoverCallRate   = 1.05
)

// topology is a Redis set up with replicas: how nodes name it, and a way
// to kill its master (the one holding the slot of the interviews' keys
// does not matter: every master is tried in turn by the nodes) and wait
// for a replica's promotion.
type topology struct {
	args     []string                                     // the nodes' -redis-url and its companions
	kill     func() (old string, at time.Time)            // kill -9 of a master
	promoted func(old string) (addr string, at time.Time) // waits for a replica to take its place
}

// TestSentinelFailover: three nodes on Sentinel (a master, a replica and
// three sentinels), 150 interviews x 3 tabs moving between nodes while
// their statuses change; the master is killed with SIGKILL mid-run and
// Sentinel promotes the replica.
func TestSentinelFailover(t *testing.T) {
	testenv.SkipUnlessLong(t, "a Sentinel failover under 450 moving tabs")
	s := redistest.StartSentinel(t)
	runFailover(t, "sentinel", topology{
		args: []string{"-redis-url", s.URL(0)},
		kill: s.KillMaster,
		promoted: func(old string) (string, time.Time) {
			return s.WaitPromoted(old, 30*time.Second)
		},
	})
}

// TestRedisClusterFailover: the same on a Redis Cluster of three masters,
// each with a replica; one master is killed and the Cluster promotes its
// replica.
func TestRedisClusterFailover(t *testing.T) {
	testenv.SkipUnlessLong(t, "a Redis Cluster failover under 450 moving tabs")
	rc := redistest.StartCluster(t)
	runFailover(t, "cluster", topology{
		args: []string{"-redis-url", rc.URL(), "-redis-cluster"},
		kill: func() (string, time.Time) {
			victim := rc.Masters()[rand.N(3)]
			return victim, rc.KillMaster(victim)
		},
		promoted: func(old string) (string, time.Time) {
			return "", rc.WaitFailover(old, 30*time.Second)
		},
	})
}

// runFailover drives the cluster through a failover and checks the stream
// contract (0 lost, duplicated, reordered), the return to one upstream
// call per interview per interval within failoverBackWithin of the
// promotion, and that every node told a failover from an outage.
func runFailover(t *testing.T, name string, topo topology) {
	// The relay's queue lives in the same Redis: each session's end must
	// reach the backend through the failover too.
	rcv := relaytest.New(t, nil)
	args := relayArgs(rcv, append([]string{"-relay-events", "ended", "-poll-interval", chaosInterval.String(), "-log-level", "info"}, topo.args...)...)
	c := newCluster(t, 3, args...)
	sessions := c.sessions(failoverInterviews)
	changes := newChangeLog(simulator.Path(simulator.OrderSteps), sessions)
	tabs := c.movingTabs(t, sessions, failoverTabs)
	began, callsBefore := time.Now(), c.statusCalls(sessions)
	driving := make(chan error, 1)
	go func() { driving <- drive(c, changes, sessions, began) }()
	time.Sleep(time.Until(began.Add(8 * time.Second)))
	before := float64(c.statusCalls(sessions)-callsBefore) / failoverInterviews / (float64(time.Since(began)) / float64(chaosInterval))

	old, killed := topo.kill()
	callsAtKill := c.statusCalls(sessions)
	_, promotedAt := topo.promoted(old)
	want := changes.steps()
	// The cluster is back when the calls are back to one per interview
	// per interval: measured over the intervals that end
	// failoverBackWithin after the promotion.
	time.Sleep(time.Until(promotedAt.Add(failoverBackWithin / 2)))
	from, callsFrom := time.Now(), c.statusCalls(sessions)
	time.Sleep(time.Until(promotedAt.Add(failoverBackWithin)))
	after := float64(c.statusCalls(sessions)-callsFrom) / failoverInterviews / (float64(time.Since(from)) / float64(chaosInterval))
	duringSwitch := callsFrom - callsAtKill

	if err := <-driving; err != nil {
		t.Fatal(err)
	}
	left := waitTabs(tabs, time.Now().Add(20*time.Second))
	c.cancel()
	c.wg.Wait()

	ends, endDups := rcv.WaitUnique(failoverInterviews, 30*time.Second)
	ended := map[string]bool{}
	for _, a := range ends {
		if e := a.Event(); e.Type == "session.ended" {
			ended[e.InterviewID] = true
		}
	}
	if len(ended) != failoverInterviews {
		t.Errorf("the backend got session.ended for %d of %d sessions through the failover", len(ended), failoverInterviews)
	}
	took, ok := recovery(tabs, changes, want, promotedAt)
	fault := window{name + " failover", killed, promotedAt}
	got := tally(tabs, changes, []window{{fault.name, killed.Add(-2 * chaosInterval), promotedAt.Add(2 * chaosInterval)}}, []window{fault})
	var failovers []string
	for i, n := range c.nodes {
		text := scrape(t, n.client, n.base)
		v := metricValue(text, `pushgate_cluster_recoveries_total{cause="failover"}`)
		others := metricValue(text, `pushgate_cluster_recoveries_total{cause="outage"}`) + metricValue(text, `pushgate_cluster_recoveries_total{cause="restart"}`)
		// Other recoveries are logged, not failed: on a loaded machine a
		// command cut by its timeout is an outage of its own.
		failovers = append(failovers, fmt.Sprintf("node %d: %v (other recoveries %v)", i, v, others))
		if v != 1 {
			t.Errorf("node %d counted %v failovers, want one; its log:\n%s", i, v, n.proc.logs.String())
		}
	}
	t.Logf("%s failover summary: %d interviews x %d tabs, interval %v, lease TTL %v: %v; %d tabs unfinished after 20 s; promotion %v after the kill; every tab showed its interview's status %v after the promotion (ok %v); upstream status calls per interview per interval: %.3f before, %.3f in the %v before promotion+%v; %d status calls from the kill to promotion+%v (%.2f per interview); failovers seen: %s",
		name, failoverInterviews, failoverTabs, chaosInterval, clusterLeaseTTL, got, left, promotedAt.Sub(killed).Round(10*time.Millisecond),
		took.Round(10*time.Millisecond), ok, before, after, failoverBackWithin/2, failoverBackWithin, duringSwitch, failoverBackWithin/2,
		float64(duringSwitch)/failoverInterviews, strings.Join(failovers, ", "))
	t.Logf("%s failover relay: session.ended for %d of %d sessions, %d delivered twice (at least once)", name, len(ended), failoverInterviews, endDups)
	if after > failoverCallRate {
		t.Errorf("%.3f upstream status calls per interview per interval by %v after the promotion, want at most %v", after, failoverBackWithin, failoverCallRate)
	}
	if !ok || took > failoverBackWithin {
		t.Errorf("after the failover, every tab showed the status its interview had at the promotion %v after it (shown by all: %v), want within %v", took, ok, failoverBackWithin)
	}
	if got.anomalies != (anomalies{}) || got.unfinished > 0 {
		t.Errorf("want 0 duplicates, reorders, regressions, unfinished tabs and lost changes; got %v; first offenders:\n%s", got, strings.Join(got.bad, "\n"))
	}
}

// TestRedisOverTLS: a node given rediss:// and -redis-ca serves streams in
// cluster mode against a TLS-only redis-server, with and without a client
// certificate; a wrong CA, or a missing client certificate, is refused at
// start, saying which is wrong.
func TestRedisOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: not with -short")
	}
	t.Parallel()
	for _, clientCerts := range []bool{false, true} {
		t.Run(fmt.Sprintf("client certificates %v", clientCerts), func(t *testing.T) {
			r := redistest.StartTLS(t, clientCerts)
			args := []string{"-redis-url", r.URL(), "-redis-ca", r.CAFile}
			if clientCerts {
				args = append(args, "-redis-cert", r.CertFile, "-redis-key", r.KeyFile)
			}
			c := newCluster(t, 2, args...)
			for i, n := range c.nodes {
				if got := metricValue(scrape(t, n.client, n.base), "pushgate_cluster_degraded"); got != 0 {
					t.Fatalf("node %d: pushgate_cluster_degraded %v over TLS, want 0; its log:\n%s", i, got, n.proc.logs.String())
				}
			}
			sessions := c.sessions(4)
			subs := c.subscribeEverywhere(sessions)
			waitAll(t, "every subscriber has the current status", subs, 1)
			for k, status := range []string{"ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED"} {
				c.setAll(sessions, status)
				waitAll(t, status+" reached every subscriber over TLS-only Redis", subs, k+2)
			}

			// Refused at start, with the part that is wrong named.
			bin := buildCommands(t)
			type refusal struct {
				args []string
				want string
			}
			refusals := []refusal{
				{[]string{"-redis-ca", r.OtherCAFile}, "not signed by a CA pushgate trusts"},
				{[]string{"-redis-ca", r.CAFile, "-redis-tls-server-name", "elsewhere.test"}, "does not name"},
			}
			if clientCerts {
				for i := range refusals {
					refusals[i].args = append(refusals[i].args, "-redis-cert", r.CertFile, "-redis-key", r.KeyFile)
				}
				refusals = append(refusals, refusal{[]string{"-redis-ca", r.CAFile}, "client certificate"})
			}
			for _, bad := range refusals {
				args := append([]string{"-addr", "127.0.0.1:0", "-upstream", c.sim, "-api-key", "cluster-key", "-flow-id", "cluster-flow",
					"-secret", "a-cluster-secret-of-32-bytes-len", "-redis-url", r.URL()}, bad.args...)
				out, err := exec.Command(bin+"/pushgate", args...).CombinedOutput()
				if err == nil || !strings.Contains(string(out), bad.want) {
					t.Errorf("%q: %v, want it refused at start with %q:\n%s", bad.args, err, bad.want, out)
				}
			}
		})
	}
}
