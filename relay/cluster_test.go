package relay_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/relay/relaytest"
)

// TestRelayTakesOverADeadNode: a node claimed a delivery and died; a live
// node's Relay makes it once the claim lapsed, then the rest of its lane,
// in order.
func TestRelayTakesOverADeadNode(t *testing.T) {
	const visibility = 200 * time.Millisecond
	srv := redistest.Start(t)
	rcv := relaytest.New(t, nil)
	dead := newRedisQueue(t, srv, relay.RedisConfig{Visibility: visibility})
	first, second := delivery("msg_first", rcv.URL, "iv"), delivery("msg_second", rcv.URL, "iv")
	add(t, dead, first, second)
	claimed := time.Now()
	next(t, dead, claimed) // and never settled
	cfg := fast(rcv.URL)
	cfg.Queue = newRedisQueue(t, srv, relay.RedisConfig{Visibility: visibility})
	newRelay(t, cfg)
	got := rcv.WaitAccepted(2, 20*time.Second)
	if len(got) != 2 || got[0].ID != "msg_first" || got[1].ID != "msg_second" || !got[0].Valid {
		t.Fatalf("delivered %v, want msg_first then msg_second, once each", got)
	}
	if gap := got[0].At.Sub(claimed); gap < visibility-time.Millisecond {
		t.Fatalf("taken over %v after the claim, before it lapsed (%v)", gap, visibility)
	}
}

// TestRelayClusterMakesEachEventOnce: two nodes that both saw a change
// (each acting alone for a while) send its session.status once; the
// external id a webhook gave one node is carried by the other's events.
func TestRelayClusterMakesEachEventOnce(t *testing.T) {
	srv := redistest.Start(t)
	rcv := relaytest.New(t, nil)
	node := func() *relay.Relay {
		cfg := fast(rcv.URL)
		cfg.Kinds = []string{relay.KindStatus}
		cfg.Queue = newRedisQueue(t, srv, relay.RedisConfig{})
		return newRelay(t, cfg)
	}
	a, b := node(), node()
	a.Accepted("iv", []byte(`{"externalId":"cust-7"}`))
	change := flow.Update{InterviewID: "iv", Status: "UNKNOWN", Seq: 1}
	a.Observed(flow.Update{}, change)
	b.Observed(flow.Update{}, change)
	// The lane is in order: once the next change is delivered, the first
	// was delivered as often as it ever will be.
	b.Observed(change, flow.Update{InterviewID: "iv", Status: flow.StatusFinished, Seq: 2})
	got := rcv.WaitAccepted(2, 20*time.Second)
	for !strings.Contains(string(got[len(got)-1].Body), flow.StatusFinished) {
		got = rcv.WaitAccepted(len(got)+1, 20*time.Second)
	}
	if len(got) != 2 {
		t.Fatalf("%d events, want 2: the change both nodes saw once, then the next", len(got))
	}
	if b := string(got[0].Body); !strings.Contains(b, `"seq":1`) || !strings.Contains(b, `"externalId":"cust-7"`) {
		t.Fatalf("first event %s, want change 1 with the external id node a heard", b)
	}
}

// TestRelayKeepsEventsWhileRedisIsDown: events made while Redis is out of
// reach wait in the node's memory, and are queued and delivered once it
// is back.
func TestRelayKeepsEventsWhileRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	rcv := relaytest.New(t, nil)
	cfg := fast(rcv.URL)
	cfg.Queue = newRedisQueue(t, srv, relay.RedisConfig{Timeout: 200 * time.Millisecond})
	r := newRelay(t, cfg)
	srv.Stop()
	r.Accepted("iv", []byte(`{"n":1}`))
	r.Accepted("iv", []byte(`{"n":2}`))
	srv.Restart() // empty
	got := rcv.WaitAccepted(2, 20*time.Second)
	if len(got) != 2 || string(got[0].Body) != `{"n":1}` || string(got[1].Body) != `{"n":2}` {
		t.Fatalf("delivered %v, want both events, in order", got)
	}
}
