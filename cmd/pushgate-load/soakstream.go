package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/pushgate/pushgate/sse/ssetest"
)

// The streams of a soak: each subscriber reopens its stream with
// Last-Event-ID whenever it closes before the flow's end, and the churn
// closes random open ones (soakworker.go has the lanes they belong to).

// subscribe is one browser tab of a generation: it opens the stream and
// reopens it whenever it closes before the flow's end, until the
// generation ends. A stream the churn closed reopens after a pause below
// one interval, so that changes fall into the gap; one that failed, after
// an interval.
func (s *soaker) subscribe(g *generation, sb *soakSub, first bool) {
	countFirst := first
	defer func() {
		if countFirst {
			s.firstTry.Done()
		}
		if sb.reopening {
			s.pending.Add(-1)
		}
		s.greet(g, sb)
		s.reach(g, sb)
	}()
	for g.ctx.Err() == nil {
		end := s.connection(g, sb, countFirst) // it counted the first try
		countFirst = false
		// Whatever else ended the connection too, a close of the churn
		// stays pending until a reopen, or the end of the generation.
		sb.reopening = sb.reopening || sb.dropped.Load()
		switch end {
		case endStopped, endFinished:
			return
		case endDropped:
			sleep(g.ctx, rand.N(s.w.a.Interval))
		case endFailed:
			sleep(g.ctx, s.w.a.Interval)
		}
	}
}

// ending is how one connection of a subscriber ended.
type ending int

const (
	endStopped  ending = iota // the generation or the run ended
	endFinished               // the gateway ended it after the flow's end: the contract
	endDropped                // the churn closed it
	endFailed                 // anything else, counted as an error
)

// connection opens one connection of sb, with Last-Event-ID once it saw
// an event, and reads it until it ends. The first attempt of a first
// generation's stream is counted in firstTry as soon as it is resolved.
func (s *soaker) connection(g *generation, sb *soakSub, first bool) ending {
	host := s.w.hosts[sb.report.Node]
	headers := []string{"X-Token", g.iv.Token, "Accept", "text/event-stream"}
	if seq := sb.lastSeq(); seq > 0 {
		headers = append(headers, "Last-Event-ID", strconv.FormatInt(seq, 10))
	}
	sb.dropped.Store(false)
	c, br, resp, err := s.dial(g.ctx, sb, request(host, "/events?interviewId="+url.QueryEscape(g.iv.ID), headers...), first)
	if first {
		s.firstTry.Done()
	}
	if err != nil {
		if g.ctx.Err() != nil {
			return endStopped
		}
		phase := "reopen"
		if first || !sb.connected {
			phase = "connect"
		}
		s.w.fail(&sb.slot, phase, err)
		return endFailed
	}
	if sb.reopening {
		sb.reopening = false
		s.pending.Add(-1)
		s.cycles.Add(1)
	}
	body := io.Reader(resp.Body)
	if slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
		body = httputil.NewChunkedReader(br)
	}
	s.w.open.Add(1)
	sb.up.Store(true)
	defer s.w.open.Add(-1)
	defer sb.up.Store(false)
	defer c.Close()
	defer closeAtStop(g.ctx, c)()
	s.enlist(sb, c)
	defer s.delist(sb)
	p := ssetest.Parser{MaxLine: maxSSELine}
	buf := make([]byte, scratchSize)
	emit := func(ev ssetest.Event) {
		s.w.onEvent(&sb.slot, g.iv, ev)
		s.noticed(g, sb)
	}
	for {
		n, rerr := body.Read(buf)
		if err := p.Feed(buf[:n], emit); err != nil {
			s.w.fail(&sb.slot, "stream", err)
			return endFailed
		}
		if rerr != nil {
			return s.ended(g, sb, rerr)
		}
	}
}

// ended classifies the end of a connection.
func (s *soaker) ended(g *generation, sb *soakSub, err error) ending {
	switch {
	case g.ctx.Err() != nil:
		return endStopped
	case sb.sawFinish():
		return endFinished
	case sb.dropped.Load():
		return endDropped
	case errors.Is(err, io.EOF):
		s.w.fail(&sb.slot, "stream", errors.New("ended by the server before ONBOARDING_FINISHED"))
	default:
		s.w.fail(&sb.slot, "stream", err)
	}
	return endFailed
}

// dial opens a connection under a connecting token. Attempts of the first
// generations count as the run's connects (attempted, failed, connect rate).
func (s *soaker) dial(ctx context.Context, sb *soakSub, req []byte, first bool) (net.Conn, *bufio.Reader, *http.Response, error) {
	select {
	case <-ctx.Done():
		return nil, nil, nil, ctx.Err()
	case s.w.sem <- struct{}{}:
	}
	defer func() { <-s.w.sem }()
	w := s.w
	if first {
		w.firstTry.CompareAndSwap(0, time.Now().UnixNano())
		w.attempted.Add(1)
	}
	c, br, resp, err := dial(ctx, w.hosts[sb.report.Node], int(s.connSeq.Add(1)), w.a.SourceIPs, req)
	if err != nil {
		if first {
			w.failed.Add(1)
			w.mu.Lock()
			w.nodeFailed[sb.report.Node]++
			w.mu.Unlock()
		}
		return nil, nil, nil, err
	}
	if first {
		s.connected.Add(1)
		w.lastOpen.Store(time.Now().UnixNano())
	}
	sb.connected = true
	return c, br, resp, nil
}

// noticed follows a new receipt: the first status greets, the last change
// reaches the end of the flow, and a stream that reached it is no longer
// the churn's to close.
func (s *soaker) noticed(g *generation, sb *soakSub) {
	n := len(sb.report.Receipts)
	if n == 0 {
		return
	}
	s.greet(g, sb)
	if sb.report.Receipts[n-1].Status == len(g.changedAt) && len(g.changedAt) > 0 {
		s.delist(sb)
		s.reach(g, sb)
	}
}

func (s *soaker) greet(g *generation, sb *soakSub) {
	if !sb.greeted {
		sb.greeted = true
		if g.toGreet.Add(-1) == 0 {
			close(g.greeted)
		}
	}
}

func (s *soaker) reach(g *generation, sb *soakSub) {
	if !sb.reached {
		sb.reached = true
		if g.toFinish.Add(-1) == 0 {
			close(g.finished)
		}
	}
}

// lastSeq is the highest event id sb received: its Last-Event-ID.
func (sb *soakSub) lastSeq() int64 {
	var seq int64
	for _, r := range sb.report.Receipts {
		seq = max(seq, r.Seq)
	}
	return seq
}

// enlist makes an open stream the churn's to close, unless it already saw
// the flow's end.
func (s *soaker) enlist(sb *soakSub, c net.Conn) {
	if sb.reached {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sb.conn, sb.liveAt = c, len(s.live)
	s.live = append(s.live, sb)
}

func (s *soaker) delist(sb *soakSub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delistLockedMu(sb)
}

// delistLockedMu removes sb from live in O(1); the caller holds s.mu.
func (s *soaker) delistLockedMu(sb *soakSub) {
	i := sb.liveAt
	if i < 0 {
		return
	}
	last := s.live[len(s.live)-1]
	s.live[i], last.liveAt = last, i
	s.live = s.live[:len(s.live)-1]
	sb.liveAt, sb.conn = -1, nil
}

// churnTick is how often the churn closes the streams it owes.
const churnTick = 20 * time.Millisecond

// churn closes random open streams at the plan's rate, from "churn" to
// "settle", the way browsers drop: a reset, without a goodbye.
func (s *soaker) churn(ctx context.Context) {
	if s.plan.Churn <= 0 {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-s.churning:
	}
	t := time.NewTicker(churnTick)
	defer t.Stop()
	last, owed := time.Now(), 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.settling:
			return
		case now := <-t.C:
			owed += now.Sub(last).Seconds() * s.plan.Churn
			last = now
			for ; owed >= 1; owed-- {
				s.drop()
			}
		}
	}
}

// drop closes one random open stream, if any.
func (s *soaker) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.live) == 0 {
		return
	}
	sb := s.live[rand.IntN(len(s.live))]
	c := sb.conn
	s.delistLockedMu(sb)
	sb.dropped.Store(true)
	s.drops.Add(1)
	s.pending.Add(1)
	resetClose(c)
}
