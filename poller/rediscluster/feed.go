package rediscluster

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
)

// This file holds the change feed: the channel other nodes announce their
// changes on, delivered to the Manager without blocking, with a Resync
// whenever changes may have been missed.

// listen runs in its own goroutine: it subscribes to the change channel
// and resubscribes after any failure, with a Resync each time.
func (n *Node) listen() {
	defer n.wg.Done()
	for n.ctx.Err() == nil {
		n.listenOnce()
		select {
		case <-n.ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// listenOnce reads the channel until its connection fails or goes quiet (a
// ping unanswered for two timeouts means a dead connection), or the Node
// closes. Close ends it at once, whatever the channel carries: a read does
// not watch the context, so closing it closes the subscription, and the
// loop checks the context before every read, since while changes keep
// arriving no read ever waits.
func (n *Node) listenOnce() {
	ps := n.rdb.Subscribe(n.ctx, n.channel)
	defer ps.Close()
	stop := context.AfterFunc(n.ctx, func() { _ = ps.Close() })
	defer stop()
	quiet := max(n.cfg.Timeout, time.Second)
	pinged := false
	for n.ctx.Err() == nil {
		v, err := ps.ReceiveTimeout(n.ctx, quiet)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && n.ctx.Err() == nil {
				pinged = ps.Ping(n.ctx) == nil
				if pinged {
					continue
				}
			}
			return
		}
		pinged = false
		switch m := v.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				n.owed.Store(true) // changes published before now were not heard
			}
		case *redis.Message:
			n.deliver(m.Payload)
		}
		n.payResync()
	}
}

// deliver hands one change to the Manager without blocking; when the
// Manager is behind, the change is dropped and a Resync owed.
func (n *Node) deliver(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil || m.ID == "" || m.Seq == 0 {
		n.log.Warn("ignoring a malformed change on the channel", "err", err)
		return
	}
	if m.Node == n.id {
		return // committed here; the Manager has it
	}
	c := poller.Change{Update: flow.Update{InterviewID: m.ID, Status: m.Status, Seq: m.Seq, End: m.End}, Prev: m.Prev, Pushed: m.Pushed}
	select {
	case n.changes <- c:
		n.metrics.feed("received")
	default:
		n.metrics.feed("dropped")
		n.owed.Store(true)
	}
}

// payResync sends an owed Resync if the Manager has room for it, and Redis
// can be reached to reload from: otherwise the health check pays it once
// Redis is back.
func (n *Node) payResync() {
	if !n.owed.Load() || n.down.Load() {
		return
	}
	select {
	case n.changes <- poller.Change{Resync: true}:
		n.owed.Store(false)
		n.metrics.feed("resync")
	default:
	}
}
