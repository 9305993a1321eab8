package rediscluster

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds the poll leases: one node reads each interview from
// upstream, the others follow.

// leadScript takes the lease when free, renews it when held, and otherwise
// answers its remaining time in ms (-1: ours now).
var leadScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return -1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then return 1 end
return ttl`)

// renewScript extends the lease only while this node holds it (1), and
// answers 0 once another node has it.
const renewScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

// releaseScript deletes the lease only while this node holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Lead takes or confirms this node's lease of the interview. A lease taken
// is renewed in the background until Release.
func (n *Node) Lead(ctx context.Context, interviewID string) (time.Duration, error) {
	if n.down.Load() {
		return 0, ErrUnavailable
	}
	n.mu.Lock()
	_, ours := n.held[interviewID]
	n.mu.Unlock()
	if ours {
		return 0, nil
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	ms, err := leadScript.Run(ctx, n.rdb, []string{n.key(interviewID, "lease")}, n.id, n.cfg.LeaseTTL.Milliseconds()).Int64()
	if err != nil {
		n.fail(err)
		return 0, err
	}
	if ms >= 0 {
		return time.Duration(ms) * time.Millisecond, nil
	}
	n.mu.Lock()
	n.held[interviewID] = struct{}{}
	n.mu.Unlock()
	n.metrics.lease("acquired")
	return 0, nil
}

// Release gives the lease up if this node holds it.
func (n *Node) Release(interviewID string) {
	n.mu.Lock()
	_, ours := n.held[interviewID]
	delete(n.held, interviewID)
	n.mu.Unlock()
	if ours {
		n.release([]string{interviewID})
	}
}

// release gives up the leases of the interviews ids, which this node
// held, in one round trip under one command timeout however many there
// are. Out of reach, they lapse within LeaseTTL.
func (n *Node) release(ids []string) {
	if len(ids) == 0 || n.down.Load() {
		return
	}
	ctx, cancel := n.op(context.Background()) // also during Close
	defer cancel()
	pipe := n.rdb.Pipeline()
	for _, id := range ids {
		releaseScript.Eval(ctx, pipe, []string{n.key(id, "lease")}, n.id)
		n.metrics.lease("released")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		n.fail(err)
	}
}

// renew runs in its own goroutine and extends the held leases every
// LeaseTTL/3, in one pipeline; a lease another node took meanwhile is
// dropped.
func (n *Node) renew() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.down.Load() {
			continue
		}
		n.mu.Lock()
		ids := make([]string, 0, len(n.held))
		for id := range n.held {
			ids = append(ids, id)
		}
		n.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := n.op(n.ctx)
		pipe := n.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.Eval(ctx, renewScript, []string{n.key(id, "lease")}, n.id, n.cfg.LeaseTTL.Milliseconds())
		}
		_, err := pipe.Exec(ctx)
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			n.fail(err)
			continue
		}
		for i, c := range cmds {
			if v, err := c.Int64(); err == nil && v == 0 {
				n.mu.Lock()
				delete(n.held, ids[i])
				n.mu.Unlock()
				n.metrics.lease("lost")
			}
		}
	}
}

// heldCount is the number of leases this node can show it holds. While
// Redis is out of reach that is none: no lease is renewed, each lapses
// within LeaseTTL, and a Redis that restarted has forgotten them all (the
// node reads its watched interviews alone meanwhile). Once Redis is back,
// held is emptied and the next Lead of each interview asks Redis again.
func (n *Node) heldCount() int {
	if n.down.Load() {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.held)
}
