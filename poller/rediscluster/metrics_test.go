package rediscluster

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

// gauge reads an unlabelled gauge from reg; -1 when it is missing.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestLeasesHeldWhileDegraded: pushgate_cluster_leases_held says what the
// node holds: its leases while Redis answers, none while Redis is out of
// reach (it renews nothing, and a restarted Redis forgets them), and,
// once Redis is back, those it has taken again.
func TestLeasesHeldWhileDegraded(t *testing.T) {
	srv := redistest.Start(t)
	reg := prometheus.NewRegistry()
	n := newNodeWith(t, srv, Config{Secret: testSecret, Metrics: reg, Logger: quiet})
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if wait, err := n.Lead(ctx, id); err != nil || wait != 0 {
			t.Fatalf("Lead(%s) = %v, %v", id, wait, err)
		}
	}
	if v := gauge(t, reg, "pushgate_cluster_leases_held"); v != 2 {
		t.Fatalf("leases held %v before the outage, want 2", v)
	}
	srv.Stop()
	if !eventually(5*time.Second, func() bool { return n.Degraded() != "" }) {
		t.Fatal("Redis stopped but the node does not report itself degraded")
	}
	for range 3 { // over more than a lease TTL: nothing comes back
		if v, d := gauge(t, reg, "pushgate_cluster_leases_held"), gauge(t, reg, "pushgate_cluster_degraded"); v != 0 || d != 1 {
			t.Fatalf("while Redis is out of reach: leases held %v, degraded %v; want 0 and 1", v, d)
		}
		time.Sleep(ttl / 2)
	}
	srv.Restart() // empty
	if !eventually(5*time.Second, func() bool { return n.Degraded() == "" }) {
		t.Fatal("Redis is back but the node still reports itself degraded")
	}
	if v := gauge(t, reg, "pushgate_cluster_leases_held"); v != 0 {
		t.Fatalf("leases held %v once Redis is back empty, before any Lead; want 0", v)
	}
	if wait, err := n.Lead(ctx, "a"); err != nil || wait != 0 {
		t.Fatalf("Lead(a) after the outage = %v, %v", wait, err)
	}
	if v := gauge(t, reg, "pushgate_cluster_leases_held"); v != 1 {
		t.Fatalf("leases held %v after taking one again, want 1", v)
	}
}
