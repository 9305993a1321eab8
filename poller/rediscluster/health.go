package rediscluster

import (
	"context"
	"errors"
	"strings"
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
// out of reach.
func (n *Node) check() {
	defer n.wg.Done()
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
		cancel()
		switch {
		case err != nil:
			n.fail(err)
		case n.down.CompareAndSwap(true, false):
			// Leases held before the outage may be gone (a restarted
			// Redis) or taken: the next Lead of each asks Redis again.
			n.mu.Lock()
			clear(n.held)
			n.mu.Unlock()
			n.log.Info("redis reachable again; back in cluster mode")
			n.owed.Store(true)
			n.payResync()
		}
	}
}

// unwritable reports whether an error reply means Redis cannot take the
// commands pushgate sends at all, rather than one command was wrong.
func unwritable(reply redis.Error) bool {
	for _, prefix := range []string{"READONLY", "MISCONF", "OOM", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY", "NOAUTH", "WRONGPASS", "NOPERM"} {
		if strings.HasPrefix(reply.Error(), prefix) {
			return true
		}
	}
	return false
}
