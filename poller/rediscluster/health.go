package rediscluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file tells whether Redis can be reached: a failed command or
// health check marks it out of reach, and a health check that writes
// again brings the node back, with a Resync.

// fail records a failed command. An empty answer (redis.Nil), a caller
// giving up and an error reply about the command itself do not count;
// anything else (no connection, a timeout, a Redis that cannot take
// writes) marks Redis out of reach until the health check, which writes,
// succeeds again. Once the Node is closing, failures say nothing of Redis:
// Close cuts the commands in flight.
func (n *Node) fail(err error) {
	var reply redis.Error
	if n.ctx.Err() != nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) || (errors.As(err, &reply) && !unwritable(reply)) {
		return
	}
	n.mu.Lock()
	n.cause = err
	n.mu.Unlock()
	if n.down.CompareAndSwap(false, true) {
		n.log.Warn("redis out of reach; polling alone until it is back", "err", err)
	}
}

// check runs in its own goroutine: it writes a short-lived key, every
// second while Redis takes it and four times a second while it does not,
// and announces its return with a Resync. A write, not a PING, so that a
// Redis that answers but cannot store (a replica, out of memory) counts as
// out of reach; in a Redis Cluster, every master must answer too and see
// every slot served, or a node whose commands fail on one shard would be
// back at each check while that shard's master is gone.
func (n *Node) check() {
	defer n.wg.Done()
	var refreshed time.Time // when the masters were last read while Redis was reachable
	for {
		every := time.Second
		if n.down.Load() {
			every = 250 * time.Millisecond
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(every):
		}
		ctx, cancel := n.op(n.ctx)
		err := n.rdb.Set(ctx, n.cfg.Prefix+":health:"+n.id, "1", 10*time.Second).Err()
		if cc, ok := n.rdb.(*redis.ClusterClient); ok && err == nil {
			err = cc.ForEachMaster(ctx, clusterWhole)
		}
		cancel()
		switch {
		case err != nil:
			n.fail(err)
		case n.down.CompareAndSwap(true, false):
			// Leases held before the outage may be gone (a restarted
			// Redis, a failover that lost the last writes) or taken: the
			// next Lead of each asks Redis again.
			n.mu.Lock()
			clear(n.held)
			n.mu.Unlock()
			n.recovered(time.Since(time.Unix(0, n.lastOK.Load())))
			refreshed = time.Now()
			n.owed.Store(true)
			n.payResync()
		case time.Since(refreshed) > 10*time.Second:
			// Masters change without an outage this node sees (a
			// planned failover): keep their list current. Until a read
			// succeeds (one at start may not, while a new Redis Cluster
			// settles), try again at each check.
			if n.readMasters() {
				refreshed = time.Now()
			}
		}
		if err == nil {
			n.lastOK.Store(time.Now().UnixNano())
		}
	}
}

// errClusterNotWhole is a Redis Cluster master's answer while some slots
// have no master that answers: a failover under way.
var errClusterNotWhole = errors.New("redis cluster: not every slot is served (cluster_state is not ok)")

// clusterWhole checks that the master c answers, and sees every slot
// served.
func clusterWhole(ctx context.Context, c *redis.Client) error {
	info, err := c.ClusterInfo(ctx).Result()
	if err == nil && infoField(info, "cluster_state") != "ok" {
		err = errClusterNotWhole
	}
	return err
}

// readMasters stores the masters' run ids, when all of them answer, and
// reports whether they did.
func (n *Node) readMasters() bool {
	ctx, cancel := n.op(n.ctx)
	defer cancel()
	now, err := n.servers(ctx)
	if err != nil {
		return false
	}
	n.mu.Lock()
	n.masters = now
	n.mu.Unlock()
	return true
}

// Why Redis was out of reach, as seen once it is back (see recovered).
const (
	causeFailover = "failover" // another server now serves: a replica promoted
	causeRestart  = "restart"  // a server started during the outage serves, empty or from its disk
	causeOutage   = "outage"   // the same servers serve: the network, a pause, a full Redis
)

// recovered logs and counts Redis's return after down (counted from the
// last check that reached it), and why it was out of reach: the masters
// serving now are told apart from those before by their run ids (INFO
// server), and a new one that was a replica (INFO replication) was
// promoted by Sentinel or the Cluster; a new one that was not started
// during the outage.
func (n *Node) recovered(down time.Duration) {
	ctx, cancel := n.op(n.ctx)
	now, err := n.servers(ctx)
	cancel()
	cause := causeOutage
	n.mu.Lock()
	before := n.masters
	if err == nil {
		n.masters = now
	}
	n.mu.Unlock()
	for id, promoted := range now {
		if _, known := before[id]; known || before == nil {
			continue
		}
		if promoted {
			cause = causeFailover
			break
		}
		cause = causeRestart
	}
	n.metrics.recover(cause)
	switch cause {
	case causeFailover:
		n.log.Info("redis reachable again after a failover: a replica now serves as master; back in cluster mode", "down_for", down.Round(time.Millisecond))
	case causeRestart:
		n.log.Info("redis reachable again after a restart: its data may be gone, nodes share theirs again; back in cluster mode", "down_for", down.Round(time.Millisecond))
	default:
		n.log.Info("redis reachable again; back in cluster mode", "down_for", down.Round(time.Millisecond))
	}
}

// servers returns the run id of each master the client reaches (one, or
// a Redis Cluster's), and whether it was promoted from a replica: it then
// keeps its former master's replication id as master_replid2, which a
// server started afresh has not (all zeros).
func (n *Node) servers(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	var mu sync.Mutex
	read := func(ctx context.Context, c redis.Cmdable) error {
		info, err := c.Info(ctx, "server", "replication").Result()
		if err != nil {
			return err
		}
		id, replid2 := infoField(info, "run_id"), infoField(info, "master_replid2")
		mu.Lock()
		out[id] = replid2 != "" && strings.Trim(replid2, "0") != ""
		mu.Unlock()
		return nil
	}
	var err error
	if cc, ok := n.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return read(ctx, c) })
	} else {
		err = read(ctx, n.rdb)
	}
	return out, err
}

// infoField reads one field of an INFO answer.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// unwritable reports whether an error reply means Redis cannot take the
// commands pushgate sends at all, rather than one command was wrong.
func unwritable(reply redis.Error) bool {
	// READONLY (a demoted master), MASTERDOWN, LOADING, CLUSTERDOWN and
	// TRYAGAIN are what a failover answers while it lasts.
	for _, prefix := range []string{"READONLY", "MISCONF", "OOM", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY", "NOAUTH", "WRONGPASS", "NOPERM", "CLUSTERDOWN", "TRYAGAIN"} {
		if strings.HasPrefix(reply.Error(), prefix) {
			return true
		}
	}
	return false
}
