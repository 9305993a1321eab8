package sse_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/sse/ssetest"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// flow is the path the simulator's flow page walks.
var steps = simulator.Flow

func TestManySubscribersEachSeeEveryChangeOnceInOrderAtOneUpstreamCallPerInterval(t *testing.T) {
	const interval = 50 * time.Millisecond
	g := newGateway(t, options{interval: interval, broker: sse.BrokerConfig{MaxPerInterview: 20}})
	s := g.start()
	began := time.Now()
	streams := make([]*ssetest.Stream, 20)
	var first flow.Update
	for i := range streams {
		streams[i] = g.open(s, "")
		u := statusOf(t, streams[i].Next(t))
		if i == 0 {
			first = u
		}
		if u.Status != "UNKNOWN" || u != first {
			t.Fatalf("subscriber %d first got %+v, want the current status UNKNOWN like the others (%+v)", i, u, first)
		}
	}
	prev := first
	for _, status := range steps[1:] {
		time.Sleep(3 * interval)
		g.setStatus(s.InterviewID, status)
		prev = sameChange(t, streams, status, prev)
	}
	for i, st := range streams {
		if rest := st.Ended(t); len(rest) != 0 {
			t.Fatalf("subscriber %d got %v after ONBOARDING_FINISHED, want the stream to end", i, rest)
		}
	}
	elapsed := time.Since(began)
	calls := g.sim.Stats().StatusByInterview[s.InterviewID]
	if max := int64(elapsed/interval) + 1; calls > max {
		t.Fatalf("20 subscribers over %v cost %d upstream status calls, want at most one per %v interval (%d)", elapsed, calls, interval, max)
	}
	eventually(t, "poller stops after ONBOARDING_FINISHED", func() bool { return g.pollers() == 0 })
	eventually(t, "connections gone", func() bool { return g.broker.Connections() == 0 })
}

func TestReconnectWithLastEventIDGetsOnlyWhatIsNewer(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	first := g.open(s, "")
	base := statusOf(t, first.Next(t)).Seq // UNKNOWN
	g.setStatus(s.InterviewID, steps[1])
	seen := statusOf(t, first.Next(t))
	if seen.Status != steps[1] || seen.Seq <= base {
		t.Fatalf("got %+v, want %s above seq %d", seen, steps[1], base)
	}
	first.Resp.Body.Close() // the tab loses its connection

	var missed []flow.Update
	for _, status := range steps[2:4] {
		g.setStatus(s.InterviewID, status)
		eventually(t, "the poller sees the change", func() bool { u, _ := g.statuses.Last(s.InterviewID); return u.Status == status })
		u, _ := g.statuses.Last(s.InterviewID)
		missed = append(missed, u)
	}

	again := g.open(s, strconv.FormatUint(seen.Seq, 10))
	for _, want := range missed {
		if u := statusOf(t, again.Next(t)); u != want {
			t.Fatalf("after reconnect got %+v, want %+v", u, want)
		}
	}
	g.setStatus(s.InterviewID, steps[4])
	if u := statusOf(t, again.Next(t)); u.Seq <= missed[1].Seq || !u.Finished() {
		t.Fatalf("got %+v, want ONBOARDING_FINISHED above seq %d", u, missed[1].Seq)
	}
	if rest := again.Ended(t); len(rest) != 0 {
		t.Fatalf("extra events %v", rest)
	}
}

func TestFinishedInterview(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	g.setStatus(s.InterviewID, "ONBOARDING_FINISHED")
	var final flow.Update

	t.Run("a new tab gets the final status and the stream ends", func(t *testing.T) {
		st := g.open(s, "")
		if final = statusOf(t, st.Next(t)); !final.Finished() {
			t.Fatalf("got %+v", final)
		}
		if rest := st.Ended(t); len(rest) != 0 {
			t.Fatalf("extra events %v", rest)
		}
	})
	t.Run("a reconnect after the final event gets 204", func(t *testing.T) {
		st := g.open(s, strconv.FormatUint(final.Seq, 10))
		if st.Resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d, want 204 so EventSource stops", st.Resp.StatusCode)
		}
	})
	t.Run("no poller is left", func(t *testing.T) {
		eventually(t, "poller stopped", func() bool { return g.pollers() == 0 })
	})
}

func TestSubscriberArrivingMidFlowGetsHistoryThenLive(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	watcher := g.open(s, "")
	statusOf(t, watcher.Next(t))
	for _, status := range steps[1:3] {
		g.setStatus(s.InterviewID, status)
		statusOf(t, watcher.Next(t))
	}
	late := g.open(s, "")
	var last uint64
	for i, status := range steps[:3] {
		u := statusOf(t, late.Next(t))
		if u.Status != status || u.Seq <= last {
			t.Fatalf("late subscriber event %d = %+v, want %s above seq %d", i, u, status, last)
		}
		last = u.Seq
	}
	g.setStatus(s.InterviewID, steps[3])
	if u := statusOf(t, late.Next(t)); u.Status != steps[3] || u.Seq <= last {
		t.Fatalf("got %+v, want %s above seq %d", u, steps[3], last)
	}
}

func TestUpstreamStatusesCannotInjectEvents(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	for _, hostile := range []string{"NEW_STATUS_FROM_UPSTREAM", "X\n\nevent: evil\ndata: {}\n\n", "X\r\nid: 999\r\n", ": comment", "retry: 1"} {
		g.setStatus(s.InterviewID, hostile)
		ev := st.Next(t)
		if u := statusOf(t, ev); u.Status != hostile {
			t.Fatalf("status %q arrived as %q", hostile, u.Status)
		}
		if strings.ContainsAny(ev.Data, "\r\n") || ev.Retry != "2000" {
			t.Fatalf("status %q changed the event framing: %+v", hostile, ev)
		}
	}
}

// TestStalledReaderDoesNotDelayOthers: a client that never reads is
// dropped after the write deadline, while 100 healthy subscribers of the
// same interview receive every event within that deadline: had the
// broadcast waited for the stalled client's blocked write, an event would
// have reached them only once the deadline dropped it. The deadline is
// 4 s, where the slowest event reached all 100 in 1.5 s at worst under
// -race on a loaded 2-core CI machine (about 25 ms on an idle one).
func TestStalledReaderDoesNotDelayOthers(t *testing.T) {
	const deadline = 4 * time.Second
	g := newGateway(t, options{writeTimeout: deadline, interval: time.Hour, smallBuffers: true, broker: sse.BrokerConfig{MaxPerInterview: 101}})
	s := g.start()
	healthy := make([]*ssetest.Stream, 100)
	var seq uint64
	for i := range healthy {
		healthy[i] = g.open(s, "")
		seq = statusOf(t, healthy[i].Next(t)).Seq
	}

	// A client that sends its request and never reads a byte.
	stalled, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(stalled, "GET /events?interviewId=%s HTTP/1.1\r\nHost: x\r\nX-Token: %s\r\n\r\n", s.InterviewID, s.Token)
	eventually(t, "the stalled client is connected", func() bool { return g.broker.Connections() == 101 })

	// 8 KiB events fill the stalled client's socket buffers after a few;
	// its writes then block until the deadline drops it.
	big := strings.Repeat("x", 8<<10)
	var slowest time.Duration
	for i := range 40 {
		sent := time.Now()
		u, _, err := g.statuses.Push(s.InterviewID, fmt.Sprint(i, big)) // numbered and published as a webhook's change is
		if err != nil {
			t.Fatal(err)
		}
		seq = u.Seq
		for h, st := range healthy {
			if u := statusOf(t, st.Next(t)); u.Seq != seq {
				t.Fatalf("healthy client %d got seq %d, want %d", h, u.Seq, seq)
			}
		}
		slowest = max(slowest, time.Since(sent))
	}
	if slowest >= deadline {
		t.Errorf("the slowest event reached all 100 healthy clients after %v, not within the %v write deadline", slowest, deadline)
	}
	published := time.Now()
	eventually(t, "the stalled client is dropped after its write deadline", func() bool { return g.broker.Connections() == 100 })
	t.Logf("slowest event to all 100 healthy clients: %v; stalled client dropped %v after the last event", slowest, time.Since(published))
	// More events than r3labs' channels hold: the stream is not frozen.
	for i := range 150 {
		u, _, err := g.statuses.Push(s.InterviewID, fmt.Sprint("S", i))
		if err != nil {
			t.Fatal(err)
		}
		seq = u.Seq
		for h, st := range healthy {
			if u := statusOf(t, st.Next(t)); u.Seq != seq {
				t.Fatalf("healthy client %d got seq %d, want %d", h, u.Seq, seq)
			}
		}
	}
}

func TestDrainEndsStreamsWithSpreadRetryHints(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	streams := make([]*ssetest.Stream, 10)
	for i := range streams {
		streams[i] = g.open(s, "")
		statusOf(t, streams[i].Next(t))
	}
	g.handler.Drain()
	hints := map[string]bool{}
	for i, st := range streams {
		rest := st.Ended(t)
		if len(rest) != 1 || rest[0].Data != "" {
			t.Fatalf("stream %d ended with %v, want exactly one retry hint", i, rest)
		}
		ms, err := strconv.Atoi(rest[0].Retry)
		if err != nil || ms < 2000 || ms > 10000 {
			t.Fatalf("retry hint %q, want 2000..10000 ms", rest[0].Retry)
		}
		hints[rest[0].Retry] = true
	}
	if len(hints) < 2 {
		t.Fatalf("all 10 clients got the same retry hint %v: reconnects would not spread", hints)
	}
	code, _, body := g.get("/events?interviewId="+s.InterviewID, tokenHeader(s.Token))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
		t.Fatalf("new stream while draining: %d %s, want 503 JSON", code, body)
	}
	if code, _, _ := g.get("/readyz", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d, want 503", code)
	}
}

func TestPollerStopsAfterLastSubscriberLeaves(t *testing.T) {
	g := newGateway(t, options{linger: 300 * time.Millisecond})
	s := g.start()
	var streams []*ssetest.Stream
	for range 3 {
		st := g.open(s, "")
		statusOf(t, st.Next(t))
		streams = append(streams, st)
	}
	if g.pollers() != 1 || g.broker.Connections() != 3 {
		t.Fatalf("%v pollers for %d streams, want one poller for 3", g.pollers(), g.broker.Connections())
	}
	for _, st := range streams {
		st.Resp.Body.Close()
	}
	eventually(t, "streams gone", func() bool { return g.broker.Connections() == 0 })
	eventually(t, "poller stopped after the linger", func() bool { return g.pollers() == 0 })
	calls := g.sim.Stats().StatusByInterview[s.InterviewID]
	time.Sleep(300 * time.Millisecond)
	if after := g.sim.Stats().StatusByInterview[s.InterviewID]; after != calls {
		t.Fatalf("upstream status calls went on after the poller stopped: %d -> %d", calls, after)
	}
}

func TestCookieAuthenticatesTheStream(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	c := s.cookie
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value != s.Token || c.Path != "/" {
		t.Fatalf("cookie %+v, want HttpOnly SameSite=Strict carrying the token", c)
	}
	req, _ := http.NewRequest(http.MethodGet, g.url+"/events?interviewId="+s.InterviewID, nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "id: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
}

func TestHeartbeatsKeepIdleStreamsAlive(t *testing.T) {
	g := newGateway(t, options{heartbeat: 30 * time.Millisecond})
	s := g.start()
	req, _ := http.NewRequest(http.MethodGet, g.url+"/events?interviewId="+s.InterviewID, nil)
	req.Header.Set("X-Token", s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	beats := 0
	for beats < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %d heartbeats: %v", beats, err)
		}
		if line == ": heartbeat\n" {
			beats++
		}
	}
}

// TestReconnectWithAnIDThisNodeNeverIssued: an event id this node does
// not remember (from an older gateway lifetime, or numbered apart by
// another node while the cluster was out of reach) carries the view of the
// status its client shows. The client gets the current status only when
// it is news to it and not behind it in the flow, always with an id above
// its Last-Event-ID; an id no gateway could have issued (stamped far in
// the future) counts as a first connect.
func TestReconnectWithAnIDThisNodeNeverIssued(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	st := g.open(s, "")
	first := statusOf(t, st.Next(t))
	g.setStatus(s.InterviewID, "ID_VALIDATION_FINISHED")
	current := statusOf(t, st.Next(t))
	stamp := current.Seq / 1000
	id := func(stamp, view uint64) string { return strconv.FormatUint(stamp*1000+view, 10) }
	const unknown, idValidation, face = 1, 2, 5 // the views of three statuses
	renumbered := current
	renumbered.Seq = (stamp+2)*1000 + idValidation
	for _, tc := range []struct {
		name, lastID string
		want         []flow.Update // nil: the stream opens with the retry hint alone
	}{
		{"an older gateway lifetime", "3", []flow.Update{current}},
		{"another node, older, another status", id(stamp-5, unknown), []flow.Update{current}},
		{"another node, older, the same status", id(stamp-5, idValidation), nil},
		{"another node, later, the same status", id(stamp+1, idValidation), nil},
		{"another node, later, a status as far in the flow", id(stamp+1, face), nil},
		{"another node, later, a status behind", id(stamp+1, unknown), []flow.Update{renumbered}},
		{"no gateway's id", id(uint64(time.Now().Add(time.Hour).UnixMilli()), face), []flow.Update{first, current}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again := g.open(s, tc.lastID)
			if tc.want == nil {
				if ev := again.Next(t); ev.Data != "" || ev.Retry == "" {
					t.Fatalf("Last-Event-ID %s got %+v, want the retry hint alone", tc.lastID, ev)
				}
				return
			}
			for _, want := range tc.want {
				if u := statusOf(t, again.Next(t)); u != want {
					t.Fatalf("Last-Event-ID %s got %+v, want %+v", tc.lastID, u, want)
				}
			}
		})
	}
}

// TestForgottenSessionEndsTheStream: when the upstream forgets a session
// (deleted: 404; its token expired: 401) or reports it EXPIRED (its flow
// timeout ran out: by status read, or by webhook), every subscriber gets
// one last "end" event naming the reason, and its stream closes; a
// reconnect after it gets 204, polling clients and the server API get
// 410, and nobody polls the upstream for it again.
func TestForgottenSessionEndsTheStream(t *testing.T) {
	expire := func(s *simulator.Simulator, id string) error { return s.SetStatus(id, flow.StatusExpired) }
	for _, tc := range []struct {
		name, reason string
		forget       func(*simulator.Simulator, string) error
		opts         options
		msg          string
		code         string // the reason code, which the browser client reads
	}{
		{"deleted", flow.EndNotFound, (*simulator.Simulator).Delete, options{}, "no longer exists", "session_not_found"},
		{"token expired", flow.EndExpired, (*simulator.Simulator).Expire, options{}, "expired", "session_expired"},
		{"EXPIRED read", flow.EndExpired, expire, options{}, "expired", "session_expired"},
		{"EXPIRED pushed", flow.EndExpired, expire, options{interval: time.Hour, webhooks: true}, "expired", "session_expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.handler.APITokens = []string{apiToken}
			g := newGateway(t, tc.opts)
			s := g.start()
			a, b := g.open(s, ""), g.open(s, "")
			first := statusOf(t, a.Next(t))
			statusOf(t, b.Next(t))
			if err := tc.forget(g.sim, s.InterviewID); err != nil {
				t.Fatal(err)
			}
			var end ssetest.Event
			for _, st := range []*ssetest.Stream{a, b} {
				end = st.Next(t)
				var data map[string]string
				json.Unmarshal([]byte(end.Data), &data)
				if end.Type != "end" || data["interviewId"] != s.InterviewID || data["reason"] != tc.reason || len(data) != 2 || !idAbove(end.ID, first.Seq) {
					t.Fatalf("last event %+v, want end with reason %s after id %d", end, tc.reason, first.Seq)
				}
				if rest := st.Ended(t); len(rest) != 0 {
					t.Fatalf("after the end: %v, want the stream closed", rest)
				}
			}
			if again := g.open(s, end.ID); again.Resp.StatusCode != http.StatusNoContent {
				t.Fatalf("reconnect after the end: %d, want 204 so EventSource stops", again.Resp.StatusCode)
			}
			fresh := g.open(s, "") // a new tab: the history, then the end
			if u := statusOf(t, fresh.Next(t)); u != first {
				t.Fatalf("new tab first got %+v", u)
			}
			if ev := fresh.Next(t); ev.Type != "end" || ev.ID != end.ID {
				t.Fatalf("new tab then got %+v, want the end", ev)
			}
			for _, route := range []string{"/onboarding-status?interviewId=", "/fetch-score?interviewId=", "/v1/sessions/"} {
				hdr := tokenHeader(s.Token)
				if strings.HasPrefix(route, "/v1/") {
					hdr = bearer(apiToken)
				}
				if code, _, body := g.get(route+s.InterviewID, hdr); code != http.StatusGone || !strings.Contains(jsonError(t, body), tc.msg) || !strings.Contains(body, `"code":"`+tc.code+`"`) {
					t.Fatalf("%s: %d %s, want 410 saying %q, code %s", route, code, body, tc.msg, tc.code)
				}
			}
			calls := g.sim.Stats().StatusByInterview[s.InterviewID]
			time.Sleep(300 * time.Millisecond) // 6 intervals
			if n := g.sim.Stats().StatusByInterview[s.InterviewID]; n != calls || g.pollers() != 0 {
				t.Fatalf("the ended session was polled again: %d -> %d calls, %v pollers", calls, n, g.pollers())
			}
		})
	}
}

// TestResumedStreamOpensWithBytes: a client up to date (its Last-Event-ID
// is the current change) still gets bytes at once, the retry hint, which
// dispatches no event: a stream that brings nothing at all is one a proxy
// holds back, and the browser client turns to polling on it.
func TestResumedStreamOpensWithBytes(t *testing.T) {
	g := newGateway(t, options{}) // heartbeats every minute
	s := g.start()
	u := statusOf(t, g.open(s, "").Next(t))
	req, _ := http.NewRequest(http.MethodGet, g.url+"/events?interviewId="+s.InterviewID, nil)
	req.Header.Set("X-Token", s.Token)
	req.Header.Set("Last-Event-ID", strconv.FormatUint(u.Seq, 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := resp.Body.Read(buf)
		got <- string(buf[:n])
	}()
	select {
	case first := <-got:
		if !strings.HasPrefix(first, "retry: ") || strings.Contains(first, "data:") {
			t.Fatalf("a resumed stream opened with %q, want the retry hint alone", first)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a resumed stream brought no byte within 5s")
	}
}

// idAbove reports whether the event id is a number above seq.
func idAbove(id string, seq uint64) bool {
	n, err := strconv.ParseUint(id, 10, 64)
	return err == nil && n > seq
}
