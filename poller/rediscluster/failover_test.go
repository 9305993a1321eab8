package rediscluster

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

// TestRecoveryCauses: once Redis is back, a node tells why it was gone:
// the same server (a pause; a master demoted to a replica, answering
// READONLY, then promoted again), a server restarted meanwhile, or a
// replica promoted by Sentinel. Each is counted by cause, and the node is
// back in cluster mode after each.
func TestRecoveryCauses(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis failovers: not with -short")
	}
	srv := redistest.Start(t)
	reg := prometheus.NewRegistry()
	n := newNodeWith(t, srv, Config{Secret: testSecret, Metrics: reg})
	drainResyncs(n)
	knowsMasters(t, n)
	back := func(cause string, want float64) {
		t.Helper()
		if !eventually(10*time.Second, func() bool { return n.Degraded() != "" }) {
			t.Fatalf("%s: the node never noticed Redis was gone", cause)
		}
		if !eventually(10*time.Second, func() bool { return n.Degraded() == "" }) {
			t.Fatalf("%s: the node is not back in cluster mode", cause)
		}
		drainResyncs(n)
		if got := pollertest.Metric(t, reg, "pushgate_cluster_recoveries_total", "cause", cause); got != want {
			t.Fatalf("pushgate_cluster_recoveries_total{cause=%q} = %v, want %v", cause, got, want)
		}
	}

	// A pause: the same server comes back.
	srv.Pause()
	if !eventually(10*time.Second, func() bool { return n.Degraded() != "" }) {
		t.Fatal("pause: the node never noticed")
	}
	srv.Resume()
	back(causeOutage, 1)

	// A master demoted: writes answer READONLY, which degrades the node
	// instead of failing its callers one by one; promoted again, the same
	// server serves.
	if _, err := srv.Do("REPLICAOF", "127.0.0.1", "1"); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, func() bool { return n.Degraded() != "" }) {
		t.Fatal("READONLY: the node never noticed")
	}
	if _, err := srv.Do("REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatal(err)
	}
	back(causeOutage, 2)

	// A restart: a server started during the outage.
	srv.Stop()
	if !eventually(10*time.Second, func() bool { return n.Degraded() != "" }) {
		t.Fatal("restart: the node never noticed")
	}
	srv.Restart()
	back(causeRestart, 1)

	if got := pollertest.Metric(t, reg, "pushgate_cluster_recoveries_total", "cause", causeFailover); got != 0 {
		t.Fatalf("failovers counted %v without one", got)
	}
}

// TestSentinelFailoverIsAFailover: on Sentinel, the master killed and its
// replica promoted, the node reaches the new master without a restart,
// calls it a failover, and holds leases there.
func TestSentinelFailoverIsAFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis failovers: not with -short")
	}
	s := redistest.StartSentinel(t)
	n, reg := newNodeOn(t, Config{URL: s.URL(0)})
	old, _ := s.KillMaster()
	promoted, _ := s.WaitPromoted(old, 30*time.Second)
	if !eventually(10*time.Second, func() bool {
		return pollertest.Metric(t, reg, "pushgate_cluster_recoveries_total", "cause", causeFailover) == 1 && n.Degraded() == ""
	}) {
		t.Fatalf("after the promotion of %s: failovers %v, degraded %q; want one failover, and cluster mode",
			promoted, pollertest.Metric(t, reg, "pushgate_cluster_recoveries_total", "cause", causeFailover), n.Degraded())
	}
	drainResyncs(n)
	if wait, err := n.Lead(t.Context(), "iv"); err != nil || wait != 0 {
		t.Fatalf("Lead on the new master = %v, %v", wait, err)
	}
}

// TestClusterShardFailover: in a Redis Cluster, the master of a shard
// other than the one holding the node's health key is killed. The node
// finds Redis out of reach until the Cluster promotes the shard's
// replica, then is back once: one failover, no flapping in between.
func TestClusterShardFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis failovers: not with -short")
	}
	rc := redistest.StartCluster(t)
	// Commands get 1 s, the default: a loaded machine must not cut one and count an
	// outage of its own in the window this test watches.
	n, reg := newNodeOn(t, Config{URL: rc.URL(), Cluster: true, Timeout: time.Second})
	recoveries := func() float64 {
		var sum float64
		for _, cause := range []string{causeFailover, causeRestart, causeOutage} {
			sum += pollertest.Metric(t, reg, "pushgate_cluster_recoveries_total", "cause", cause)
		}
		return sum
	}
	// Leases on every shard: their renewals fail on the dead one.
	for i := range 60 {
		if wait, err := n.Lead(t.Context(), fmt.Sprintf("iv-%d", i)); err != nil || wait != 0 {
			t.Fatalf("Lead = %v, %v", wait, err)
		}
	}
	health := rc.MasterOf("pushgate:health:" + n.ID())
	var victim string
	for _, m := range rc.Masters() {
		if m != health {
			victim = m
			break
		}
	}
	before := recoveries()
	rc.KillMaster(victim)
	if !eventually(10*time.Second, func() bool { return n.Degraded() != "" }) {
		t.Fatal("a shard's master is gone, but the node never found Redis out of reach")
	}
	rc.WaitFailover(victim, 30*time.Second)
	if !eventually(10*time.Second, func() bool {
		return pollertest.Metric(t, reg, "pushgate_cluster_recoveries_total", "cause", causeFailover) == 1 && n.Degraded() == ""
	}) {
		t.Fatalf("after the promotion: failovers %v, degraded %q; want one failover, and cluster mode", pollertest.Metric(t, reg, "pushgate_cluster_recoveries_total", "cause", causeFailover), n.Degraded())
	}
	// One return, the failover's: a node that came back while the shard
	// had no master would have counted another (an outage), and its
	// failover only later.
	if got := recoveries() - before; got != 1 {
		t.Errorf("the node came back %v times from the kill to the promotion and after, want once (no going back and forth)", got)
	}
}

// TestShapeMismatchRefused: a Redis Cluster node named as one server, and
// one server named as a Redis Cluster, are refused at start: every command
// would fail while the node looked healthy.
func TestShapeMismatchRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster: not with -short")
	}
	srv := redistest.Start(t)
	if _, err := New(Config{URL: srv.URL(), Cluster: true, Secret: testSecret}); !errors.Is(err, errShape) || !strings.Contains(err.Error(), "leave -redis-cluster out") {
		t.Errorf("one server as a Redis Cluster: %v, want it refused", err)
	}
	rc := redistest.StartCluster(t)
	if _, err := New(Config{URL: "redis://" + rc.Nodes[0].Addr, Secret: testSecret}); !errors.Is(err, errShape) || !strings.Contains(err.Error(), "add -redis-cluster") {
		t.Errorf("a Redis Cluster node as one server: %v, want it refused", err)
	}
}

// newNodeOn starts a node on the Redis cfg names, with the tests' secret,
// lease TTL and timeout and a registry of its own, its first resync
// drained, once it knows the masters serving (see knowsMasters).
func newNodeOn(t *testing.T, cfg Config) (*Node, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Secret, cfg.LeaseTTL, cfg.Metrics = testSecret, ttl, reg
	cfg.Timeout = cmp.Or(cfg.Timeout, 500*time.Millisecond)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	drainResyncs(n)
	knowsMasters(t, n)
	return n, reg
}

// knowsMasters waits until n has read the masters serving, which it tells
// a failover by once Redis is back: a test that kills one before then
// (the read at start can fail while a new Redis Cluster settles; the
// checks then read them within a second) would see an outage.
func knowsMasters(t *testing.T, n *Node) {
	t.Helper()
	known := func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.masters) > 0
	}
	if !eventually(10*time.Second, known) {
		t.Fatal("the node never read the masters serving")
	}
}
