package sse

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller"
)

var flow = []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED", "FACE_VALIDATION_FINISHED", "ONBOARDING_FINISHED"}

func TestManySubscribersEachSeeEveryChangeOnceInOrderAtOneUpstreamCallPerInterval(t *testing.T) {
	const interval = 50 * time.Millisecond
	g := newGateway(t, options{interval: interval})
	s := g.start()
	began := time.Now()
	streams := make([]*stream, 20)
	for i := range streams {
		streams[i] = g.open(s, "")
		if u := statusOf(t, streams[i].next(t)); u.Status != "UNKNOWN" || u.Seq != 1 {
			t.Fatalf("subscriber %d first got %+v, want the current status UNKNOWN seq 1", i, u)
		}
	}
	for _, status := range flow[1:] {
		time.Sleep(3 * interval)
		g.setStatus(s.InterviewID, status)
		for i, st := range streams {
			if u := statusOf(t, st.next(t)); u.Status != status {
				t.Fatalf("subscriber %d got %+v, want %s", i, u, status)
			}
		}
	}
	for i, st := range streams {
		if rest := st.ended(t); len(rest) != 0 {
			t.Fatalf("subscriber %d got %v after ONBOARDING_FINISHED, want the stream to end", i, rest)
		}
	}
	elapsed := time.Since(began)
	calls := g.sim.Stats().StatusByInterview[s.InterviewID]
	if max := int64(elapsed/interval) + 1; calls > max {
		t.Fatalf("20 subscribers over %v cost %d upstream status calls, want at most one per %v interval (%d)", elapsed, calls, interval, max)
	}
	eventually(t, "poller stops after ONBOARDING_FINISHED", func() bool { return !g.statuses.Polling(s.InterviewID) })
	eventually(t, "connections gone", func() bool { return g.broker.Connections() == 0 })
}

func TestReconnectWithLastEventIDGetsOnlyWhatIsNewer(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	first := g.open(s, "")
	statusOf(t, first.next(t)) // UNKNOWN, 1
	g.setStatus(s.InterviewID, flow[1])
	if u := statusOf(t, first.next(t)); u.Seq != 2 {
		t.Fatalf("got %+v, want seq 2", u)
	}
	first.resp.Body.Close() // the tab loses its connection

	g.setStatus(s.InterviewID, flow[2])
	eventually(t, "the poller sees the change", func() bool { u, _ := g.statuses.Last(s.InterviewID); return u.Seq == 3 })
	g.setStatus(s.InterviewID, flow[3])
	eventually(t, "the poller sees the change", func() bool { u, _ := g.statuses.Last(s.InterviewID); return u.Seq == 4 })

	again := g.open(s, "2")
	for _, want := range []poller.Update{{InterviewID: s.InterviewID, Status: flow[2], Seq: 3}, {InterviewID: s.InterviewID, Status: flow[3], Seq: 4}} {
		if u := statusOf(t, again.next(t)); u != want {
			t.Fatalf("after reconnect got %+v, want %+v", u, want)
		}
	}
	g.setStatus(s.InterviewID, flow[4])
	if u := statusOf(t, again.next(t)); u.Seq != 5 || !u.Finished() {
		t.Fatalf("got %+v, want ONBOARDING_FINISHED seq 5", u)
	}
	if rest := again.ended(t); len(rest) != 0 {
		t.Fatalf("extra events %v", rest)
	}
}

func TestFinishedInterview(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	g.setStatus(s.InterviewID, "ONBOARDING_FINISHED")

	t.Run("a new tab gets the final status and the stream ends", func(t *testing.T) {
		st := g.open(s, "")
		if u := statusOf(t, st.next(t)); !u.Finished() || u.Seq != 1 {
			t.Fatalf("got %+v", u)
		}
		if rest := st.ended(t); len(rest) != 0 {
			t.Fatalf("extra events %v", rest)
		}
	})
	t.Run("a reconnect after the final event gets 204", func(t *testing.T) {
		st := g.open(s, "1")
		if st.resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d, want 204 so EventSource stops", st.resp.StatusCode)
		}
	})
	t.Run("no poller is left", func(t *testing.T) {
		eventually(t, "poller stopped", func() bool { return !g.statuses.Polling(s.InterviewID) })
	})
}

func TestSubscriberArrivingMidFlowGetsHistoryThenLive(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	watcher := g.open(s, "")
	statusOf(t, watcher.next(t))
	for _, status := range flow[1:3] {
		g.setStatus(s.InterviewID, status)
		statusOf(t, watcher.next(t))
	}
	late := g.open(s, "")
	for i, status := range flow[:3] {
		if u := statusOf(t, late.next(t)); u.Status != status || u.Seq != uint64(i+1) {
			t.Fatalf("late subscriber event %d = %+v, want %s", i, u, status)
		}
	}
	g.setStatus(s.InterviewID, flow[3])
	if u := statusOf(t, late.next(t)); u.Status != flow[3] || u.Seq != 4 {
		t.Fatalf("got %+v", u)
	}
}

func TestUpstreamStatusesCannotInjectEvents(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.next(t))
	for _, hostile := range []string{"NEW_STATUS_FROM_UPSTREAM", "X\n\nevent: evil\ndata: {}\n\n", "X\r\nid: 999\r\n", ": comment", "retry: 1"} {
		g.setStatus(s.InterviewID, hostile)
		ev := st.next(t)
		if u := statusOf(t, ev); u.Status != hostile {
			t.Fatalf("status %q arrived as %q", hostile, u.Status)
		}
		if strings.ContainsAny(ev.data, "\r\n") || ev.retry != "2000" {
			t.Fatalf("status %q changed the event framing: %+v", hostile, ev)
		}
	}
}

func TestStalledReaderDoesNotDelayOthers(t *testing.T) {
	g := newGateway(t, options{writeTimeout: 500 * time.Millisecond, interval: time.Hour})
	s := g.start()
	healthy := g.open(s, "")
	statusOf(t, healthy.next(t))

	// A client that sends its request and never reads a byte.
	stalled, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /events?interviewId=%s HTTP/1.1\r\nHost: x\r\nX-Token: %s\r\n\r\n", s.InterviewID, s.Token)
	eventually(t, "the stalled client is connected", func() bool { return g.broker.Connections() == 2 })

	// 1 MiB events until the stalled client's socket buffers are full and
	// its writes block, then many more than r3labs' channels hold.
	big := strings.Repeat("x", 1<<20)
	seq := uint64(1)
	publish := func(status string) {
		seq++
		g.broker.Publish(poller.Update{InterviewID: s.InterviewID, Status: status, Seq: seq})
	}
	for i := range 30 {
		publish(fmt.Sprint(i, big))
		if u := statusOf(t, healthy.next(t)); u.Seq != seq {
			t.Fatalf("healthy client got seq %d, want %d", u.Seq, seq)
		}
	}
	eventually(t, "the stalled client is dropped after its write deadline", func() bool { return g.broker.Connections() == 1 })
	for i := range 300 {
		publish(fmt.Sprint("S", i))
		if u := statusOf(t, healthy.next(t)); u.Seq != seq {
			t.Fatalf("healthy client got seq %d, want %d", u.Seq, seq)
		}
	}
}

func TestDrainEndsStreamsWithSpreadRetryHints(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	streams := make([]*stream, 10)
	for i := range streams {
		streams[i] = g.open(s, "")
		statusOf(t, streams[i].next(t))
	}
	g.handler.Drain()
	hints := map[string]bool{}
	for i, st := range streams {
		rest := st.ended(t)
		if len(rest) != 1 || rest[0].data != "" {
			t.Fatalf("stream %d ended with %v, want exactly one retry hint", i, rest)
		}
		ms, err := strconv.Atoi(rest[0].retry)
		if err != nil || ms < 2000 || ms > 10000 {
			t.Fatalf("retry hint %q, want 2000..10000 ms", rest[0].retry)
		}
		hints[rest[0].retry] = true
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
	var streams []*stream
	for range 3 {
		st := g.open(s, "")
		statusOf(t, st.next(t))
		streams = append(streams, st)
	}
	if !g.statuses.Polling(s.InterviewID) || g.statuses.Watchers(s.InterviewID) != 3 {
		t.Fatalf("polling %v with %d watchers, want a poller for 3", g.statuses.Polling(s.InterviewID), g.statuses.Watchers(s.InterviewID))
	}
	for _, st := range streams {
		st.resp.Body.Close()
	}
	eventually(t, "watchers gone", func() bool { return g.statuses.Watchers(s.InterviewID) == 0 })
	eventually(t, "poller stopped after the linger", func() bool { return !g.statuses.Polling(s.InterviewID) })
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
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "id: 1\n" {
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
