package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/sse"
)

// newRelay starts the relay when target URLs are configured: its queue is
// shared by the cluster in Redis, or this node's own, on disk in
// Relay.Dir or in memory. It is closed after the pollers and the handler,
// which feed it (closers run in reverse).
func (g *Gateway) newRelay() error {
	rc := g.cfg.Relay
	if len(rc.URLs) == 0 {
		return nil
	}
	rc.Metrics, rc.Logger, rc.Scorer = g.Metrics, g.log, &g.verdicts
	switch {
	case g.cfg.Redis.URL != "":
		if rc.Dir != "" {
			g.log.Warn("-relay-dir is not used with -redis-url: the relay's queue is in Redis, shared by the cluster")
		}
		q, err := g.redisQueue(rc)
		if err != nil {
			return err
		}
		rc.Queue = q
	case rc.Dir == "":
		g.log.Warn("the relay's queue is in memory: events not delivered yet are lost at a restart; set -relay-dir (one node) or -redis-url (a cluster)")
	}
	r, err := relay.New(rc)
	if err != nil {
		if rc.Queue != nil {
			rc.Queue.Close()
		}
		return err
	}
	g.Relay = r
	g.onClose("relay", func() {
		if err := r.Close(); err != nil {
			g.log.Warn("relay: closing its queue", "err", err)
		}
	})
	where := "memory"
	switch {
	case rc.Queue != nil:
		where = "redis"
	case rc.Dir != "":
		where = rc.Dir
	}
	g.log.Info("relay on", "targets", len(rc.URLs), "kinds", rc.Kinds, "queue", where)
	return nil
}

// redisQueue makes the relay's queue in the cluster's Redis, on a client
// of its own, closed after the queue. A claimed delivery that its node
// never settles (the node died) is taken over after three attempt
// timeouts: room for the verdict's read and the attempt itself.
func (g *Gateway) redisQueue(rc relay.Config) (relay.Queue, error) {
	// Every call is cut at a second, and never retried by the client: the
	// relay makes a failed call again itself, which is safe, as an Add
	// queues each event once (its seen keys) and a settle acts only on the
	// head of its lane that has its delivery's id.
	client, err := g.cfg.Redis.Address().NewClient(time.Second, -1)
	if err != nil {
		return nil, fmt.Errorf("gateway: the relay's Redis: %w", err)
	}
	g.onClose("relay redis client", func() { client.Close() })
	timeout := cmp.Or(rc.Timeout, relay.DefaultTimeout)
	return relay.NewRedisQueue(relay.RedisConfig{
		Client: client, Prefix: g.cfg.Redis.Prefix, Visibility: 3 * timeout,
		MaxQueue: rc.MaxQueue, MaxAge: rc.MaxAge, Retention: g.cfg.Poller.Retention,
	})
}

// verdicts is the relay's Scorer: the Handler's score path (its cache,
// one upstream call shared by concurrent readers, the ceiling). The relay
// starts before the Handler exists; a verdict asked for before then is
// tried again later.
type verdicts struct {
	h atomic.Pointer[sse.Handler]
}

func (v *verdicts) Verdict(ctx context.Context, interviewID string) (string, error) {
	h := v.h.Load()
	if h == nil {
		return "", errors.New("gateway: starting")
	}
	return h.Verdict(ctx, interviewID)
}
