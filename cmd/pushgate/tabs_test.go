package main

// Tabs for the chaos and shutdown storm tests: browser tabs that move
// between nodes, recording every event and every connection. tally_test.go
// checks what they saw against the changes the test made.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/sse/ssetest"
)

// tab is one browser tab of an interview. It follows the interview's
// stream from node to node, sending the id of the last event it got as
// Last-Event-ID, as EventSource does, until the flow finishes.
type tab struct {
	s      session
	policy tabPolicy
	done   chan struct{} // closed once the flow finished

	mu     sync.Mutex // protects events and conns
	events []tabEvent
	conns  []tabConn
}

// tabPolicy says when a tab moves to the next node. A tab always moves on
// after a refusal or a failed connection.
type tabPolicy struct {
	// hold is how long a stream is kept before the tab closes it and
	// reconnects to the next node; nil keeps it until the server ends it.
	hold func() time.Duration
	// stay sends the tab back to the same node after the server ended its
	// stream, at once, as a client behind a load balancer still routing
	// there would; false moves it to the next node.
	stay bool
}

type tabEvent struct {
	flow.Update
	at   time.Time
	conn int // index in conns
}

// tabConn is one connection attempt of a tab.
type tabConn struct {
	node       int
	lastID     uint64    // the Last-Event-ID sent; 0 for none
	began      time.Time // request sent
	open       time.Time // 200 received; zero when it was not
	ended      time.Time
	status     int    // HTTP status; 0 when no answer came
	err        string // why no answer came
	refused    bool   // the connection was refused
	retryAfter string // Retry-After of a refusal
	code       string // the JSON error code of a refusal
	hinted     bool   // the server ended the stream with a retry hint
	moved      bool   // the tab closed the stream to move on
}

// openTab starts a tab of s on the given node.
func (c *cluster) openTab(s session, node int, p tabPolicy) *tab {
	tb := &tab{s: s, policy: p, done: make(chan struct{})}
	c.wg.Go(func() { tb.follow(c, node) })
	return tb
}

func (tb *tab) follow(c *cluster, i int) {
	defer func() {
		if tb.finished() {
			close(tb.done)
		}
	}()
	for c.ctx.Err() == nil {
		cn := tb.connect(c, i)
		if tb.finished() {
			return
		}
		if !(tb.policy.stay && cn.status == http.StatusOK && !cn.moved) {
			i = (i + 1) % len(c.nodes)
		}
		pause := time.Duration(0)
		if cn.status != http.StatusOK {
			pause = 50 * time.Millisecond // no hot loop while every node refuses
		}
		select {
		case <-c.ctx.Done():
		case <-time.After(pause):
		}
	}
}

// connect makes one connection to node i and reads its stream until it
// ends, the tab moves on or the test ends.
func (tb *tab) connect(c *cluster, i int) tabConn {
	ctx, cancel := c.ctx, context.CancelFunc(func() {})
	if tb.policy.hold != nil {
		ctx, cancel = context.WithTimeout(c.ctx, tb.policy.hold())
	}
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.nodes[i].base+"/events?interviewId="+tb.s.InterviewID, nil)
	req.Header.Set("X-Token", tb.s.Token)
	cn := tabConn{node: i, lastID: tb.last().Seq, began: time.Now()}
	if cn.lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(cn.lastID, 10))
	}
	k := tb.add(cn)
	defer func() {
		cn.ended = time.Now()
		tb.set(k, cn)
	}()
	resp, err := c.client.Do(req)
	if err != nil {
		cn.err, cn.refused = err.Error(), errors.Is(err, syscall.ECONNREFUSED)
		cn.moved = ctx.Err() != nil
		return cn
	}
	defer resp.Body.Close()
	cn.status = resp.StatusCode
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent: // the flow finished and the tab has its end
		return cn
	default:
		var body struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		cn.retryAfter, cn.code = resp.Header.Get("Retry-After"), body.Code
		return cn
	}
	cn.open = time.Now()
	tb.set(k, cn)
	err = ssetest.Read(resp.Body, func(ev ssetest.Event) bool {
		u, err := ssetest.Status(ev)
		if err != nil {
			cn.hinted = cn.hinted || (ev.Data == "" && ev.Retry != "")
			return true
		}
		tb.mu.Lock()
		tb.events = append(tb.events, tabEvent{Update: u, at: time.Now(), conn: k})
		tb.mu.Unlock()
		return !u.Finished()
	})
	if err != nil {
		cn.err = err.Error()
		cn.moved = ctx.Err() != nil
	}
	return cn
}

func (tb *tab) add(cn tabConn) int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.conns = append(tb.conns, cn)
	return len(tb.conns) - 1
}

func (tb *tab) set(k int, cn tabConn) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.conns[k] = cn
}

// last is the last event the tab got: its id is the Last-Event-ID.
func (tb *tab) last() flow.Update {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.events) == 0 {
		return flow.Update{}
	}
	return tb.events[len(tb.events)-1].Update
}

func (tb *tab) finished() bool { return tb.last().Finished() }

// record is a copy of what the tab saw, for the tally.
func (tb *tab) record() ([]tabEvent, []tabConn) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Clone(tb.events), slices.Clone(tb.conns)
}

// waitTabs waits until every tab saw the flow finish, or until deadline;
// it returns how many did not.
func waitTabs(tabs []*tab, deadline time.Time) int {
	left := 0
	for _, tb := range tabs {
		select {
		case <-tb.done:
		case <-time.After(time.Until(deadline)):
			left++
		}
	}
	return left
}
