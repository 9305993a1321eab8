package sse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/sse/ssetest"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// The reliability tests inject upstream faults through the simulator and
// check what subscribers notice: they keep their last status, get every
// change once and in order, and the upstream is not flooded.

// TestUpstreamErrorsBackOffAndRecover: during a run of 503s the poller
// backs off, subscribers keep the last status and readiness turns off;
// when the upstream recovers, the change made meanwhile arrives by the
// next attempt.
func TestUpstreamErrorsBackOffAndRecover(t *testing.T) {
	const interval, backoffMax = 50 * time.Millisecond, 400 * time.Millisecond
	g := newGateway(t, options{interval: interval, poller: poller.Config{BackoffMax: backoffMax}})
	s := g.start()
	streams := []*ssetest.Stream{g.open(s, ""), g.open(s, ""), g.open(s, "")}
	for _, st := range streams {
		statusOf(t, st.Next(t))
	}
	calls := func() int64 { return g.sim.Stats().StatusByInterview[s.InterviewID] }

	g.sim.SetFaults(simulator.Faults{ErrorRate: 1, Status: 503})
	before := calls()
	time.Sleep(time.Second)
	during := calls() - before
	// Without backoff: 20 calls. With it: waits of 25-50, 50-100, 100-200,
	// then 200-400 ms.
	if during < 3 || during > 10 {
		t.Errorf("%d status calls in 1 s of 503s at a %v interval, want 3..10 with backoff capped at %v", during, interval, backoffMax)
	}
	code, _, body := g.get("/onboarding-status?interviewId="+s.InterviewID, tokenHeader(s.Token))
	if code != 200 || !strings.Contains(body, "UNKNOWN") {
		t.Errorf("polling client during the outage: %d %s, want the last status", code, body)
	}
	if code, _, _ := g.get("/readyz", nil); code != 503 {
		t.Errorf("/readyz during the outage: %d, want 503", code)
	}
	if g.broker.Connections() != 3 {
		t.Errorf("%d streams open during the outage, want all 3", g.broker.Connections())
	}

	g.setStatus(s.InterviewID, "ID_VALIDATION_FINISHED")
	recovered := time.Now()
	g.sim.ClearFaults()
	for _, st := range streams {
		if u := statusOf(t, st.Next(t)); u.Status != "ID_VALIDATION_FINISHED" {
			t.Fatalf("after recovery got %+v", u)
		}
	}
	if took := time.Since(recovered); took > backoffMax+interval+time.Second { // a second of slack for a loaded machine
		t.Errorf("the change made during the outage arrived %v after recovery, want within one backoff step (%v) and an interval", took, backoffMax)
	}
	eventually(t, "/readyz ready again", func() bool { code, _, _ := g.get("/readyz", nil); return code == 200 })
}

// TestUpstreamConnectionRefused: the same with no upstream listening at all.
func TestUpstreamConnectionRefused(t *testing.T) {
	// A proxy in front of the simulator stands for the upstream host: it
	// is taken down and brought back on the same address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var target atomic.Pointer[url.URL]
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target.Load()) }}
	serve := func(ln net.Listener) *httptest.Server {
		srv := httptest.NewUnstartedServer(proxy)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		return srv
	}
	front := serve(ln)
	g := newGateway(t, options{interval: 50 * time.Millisecond, upstreamURL: "http://" + addr, poller: poller.Config{BackoffMax: 400 * time.Millisecond}})
	u, _ := url.Parse(g.simURL)
	target.Store(u)
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))

	front.Close() // connection refused from now on
	time.Sleep(500 * time.Millisecond)
	if code, _, body := g.get("/onboarding-status?interviewId="+s.InterviewID, tokenHeader(s.Token)); code != 200 || !strings.Contains(body, "UNKNOWN") {
		t.Errorf("polling client with the upstream down: %d %s, want the last status", code, body)
	}
	if code, _, _ := g.get("/readyz", nil); code != 503 {
		t.Errorf("/readyz with the upstream down: %d, want 503", code)
	}
	g.setStatus(s.InterviewID, "ID_VALIDATION_FINISHED")
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("reopening the upstream address: %v", err)
	}
	defer serve(ln).Close()
	if u := statusOf(t, st.Next(t)); u.Status != "ID_VALIDATION_FINISHED" {
		t.Fatalf("after the upstream came back got %+v", u)
	}
}

// TestHangingUpstreamHoldsOnlyItsInterview: reads of one interview hang;
// they time out, never pile up, and the other interviews' changes still
// arrive at once.
func TestHangingUpstreamHoldsOnlyItsInterview(t *testing.T) {
	g := newGateway(t, options{interval: 50 * time.Millisecond, poller: poller.Config{CallTimeout: 300 * time.Millisecond, BackoffMax: 300 * time.Millisecond, MaxConcurrent: 4}})
	stuck, fine := g.start(), g.start()
	stuckStream, fineStream := g.open(stuck, ""), g.open(fine, "")
	statusOf(t, stuckStream.Next(t))
	statusOf(t, fineStream.Next(t))

	g.sim.SetFaults(simulator.Faults{Hang: true, Interviews: []string{stuck.InterviewID}})
	for _, status := range steps[1:4] {
		g.setStatus(fine.InterviewID, status)
		g.setStatus(stuck.InterviewID, status)
		if u := statusOf(t, fineStream.Next(t)); u.Status != status {
			t.Fatalf("the healthy interview got %+v, want %s", u, status)
		}
	}
	time.Sleep(time.Second) // several timed-out reads of the stuck one
	if st := g.sim.Stats(); st.MaxStatusInFlight > 1 {
		t.Errorf("%d status calls of one interview were in flight at once, want reads never to pile up", st.MaxStatusInFlight)
	}
	g.sim.ClearFaults()
	if u := statusOf(t, stuckStream.Next(t)); u.Status != steps[3] {
		t.Fatalf("the stuck interview after the hang got %+v, want %s: the shared read must not stay stuck", u, steps[3])
	}
}

// TestMalformedAnswersAreErrors: broken upstream JSON counts as a failed
// read (backoff, last status kept); unknown statuses are data.
func TestMalformedAnswersAreErrors(t *testing.T) {
	g := newGateway(t, options{interval: 50 * time.Millisecond, poller: poller.Config{BackoffMax: 400 * time.Millisecond}})
	s := g.start()
	st := g.open(s, "")
	statusOf(t, st.Next(t))
	calls := func() int64 { return g.sim.Stats().StatusByInterview[s.InterviewID] }
	g.sim.SetFaults(simulator.Faults{MalformedRate: 1})
	before := calls()
	time.Sleep(time.Second)
	if n := calls() - before; n > 10 {
		t.Errorf("%d calls in 1 s of malformed answers: they must count as errors and back off", n)
	}
	g.sim.ClearFaults()
	g.setStatus(s.InterviewID, "A_STATUS_FROM_THE_FUTURE")
	if u := statusOf(t, st.Next(t)); u.Status != "A_STATUS_FROM_THE_FUTURE" {
		t.Fatalf("got %+v, want the unknown status passed through", u)
	}
}

// TestOutageOf1000Interviews: 1,000 polled interviews lose the upstream for
// 10 s. The call rate during the outage stays under the ceiling, and the
// recovery is spread out rather than a stampede.
func TestOutageOf1000Interviews(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 18 s")
	}
	t.Parallel() // a gateway and simulator of its own; it waits out a 10 s outage
	// The ceiling is below the normal demand of 1,000 calls/s, so it also
	// shows in normal operation.
	const n, interval, ceiling, backoffMax = 1000, time.Second, 800.0, 4 * time.Second
	g := newGateway(t, options{interval: interval, linger: time.Minute, maxUpstreamRate: ceiling, poller: poller.Config{
		BackoffMax: backoffMax, MaxConcurrent: 64,
	}})
	// Every session first, then every watch: a start made while the
	// pollers already run waits its turn under the ceiling.
	ids := make([]string, n)
	for i := range ids {
		ids[i] = g.start().InterviewID
	}
	for _, id := range ids {
		defer g.statuses.Watch(id)()
	}
	total := func() int64 { return g.sim.Stats().Status }
	time.Sleep(2 * interval) // every poller running
	rate := func(from int64, d time.Duration) float64 { return float64(total()-from) / d.Seconds() }
	start := total()
	time.Sleep(2 * interval)
	normal := rate(start, 2*interval)

	g.sim.SetFaults(simulator.Faults{ErrorRate: 1, Status: 503})
	start = total()
	time.Sleep(10 * time.Second)
	during := rate(start, 10*time.Second)
	if during > ceiling || during > normal*0.8 {
		t.Errorf("%.0f calls/s during the outage (normal %.0f/s, ceiling %.0f/s): backoff must lower the rate", during, normal, ceiling)
	}

	for _, id := range ids {
		g.setStatus(id, "ID_VALIDATION_FINISHED")
	}
	g.sim.ClearFaults()
	recovered := time.Now()
	var peak int64 // most calls in one 100 ms window of the recovery
	for prev := total(); ; {
		time.Sleep(100 * time.Millisecond)
		cur := total()
		peak = max(peak, cur-prev)
		prev = cur
		done := 0
		for _, id := range ids {
			if u, _ := g.statuses.Last(id); u.Status == "ID_VALIDATION_FINISHED" {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Since(recovered) > 4*backoffMax {
			t.Fatalf("%d of %d interviews recovered %v after the upstream did", done, n, time.Since(recovered))
		}
	}
	took := time.Since(recovered)
	t.Logf("normal %.0f calls/s; outage %.0f calls/s; recovery of %d interviews in %v, peak %d calls per 100 ms", normal, during, n, took, peak)
	if limit := int64(ceiling/10) + int64(ceiling/10) + 10; peak > limit {
		t.Errorf("recovery peaked at %d calls per 100 ms, over the ceiling's %d", peak, limit)
	}
	if took > backoffMax+4*interval {
		t.Errorf("recovery took %v, want within one backoff cap and a few intervals", took)
	}
}

// TestChurnLeavesNothingBehind: many connect/disconnect cycles leave the
// goroutine count and the heap where they were. BenchmarkChurn runs the
// full 100,000 cycles.
func TestChurnLeavesNothingBehind(t *testing.T) {
	g := newGateway(t, options{})
	s := g.start()
	cycle := func(n int) {
		for range n {
			if err := connectOnce(g, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	cycle(200) // warm up pools and caches
	goroutines, heap := settle(t, g)
	cycle(2000)
	goroutinesAfter, heapAfter := settle(t, g)
	t.Logf("goroutines %d -> %d, heap %d -> %d bytes", goroutines, goroutinesAfter, heap, heapAfter)
	if goroutinesAfter > goroutines+2 {
		t.Errorf("goroutines %d -> %d after 2,000 connect/disconnect cycles", goroutines, goroutinesAfter)
	}
	if heapAfter > heap+heap/10+256<<10 {
		t.Errorf("heap %d -> %d bytes after 2,000 cycles: more than 10%% growth", heap, heapAfter)
	}
}

// connectOnce opens a stream, reads its first event and hangs up.
func connectOnce(g *gateway, s session) error {
	req, _ := http.NewRequest(http.MethodGet, g.url+"/events?interviewId="+s.InterviewID, nil)
	req.Header.Set("X-Token", s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "id: ") {
		return fmt.Errorf("first line %q, %v", line, err)
	}
	return nil
}

// settle waits for the connections to be gone and returns the goroutine
// count and live heap.
func settle(t testing.TB, g *gateway) (goroutines int, heap uint64) {
	eventually(t, "connections closed", func() bool { return g.broker.Connections() == 0 })
	http.DefaultClient.CloseIdleConnections()
	var ms runtime.MemStats
	prev := -1
	for range 50 { // until the count stops moving
		time.Sleep(20 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == prev {
			break
		} else {
			prev = n
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

// BenchmarkChurn opens and closes one stream per iteration and reports the
// goroutines and heap left at the end. Run the full count with:
//
//	go test ./sse -run '^$' -bench Churn -benchtime 100000x
func BenchmarkChurn(b *testing.B) {
	g := newGateway(b, options{})
	s := g.start()
	goroutines, heap := settle(b, g)
	b.ResetTimer()
	for b.Loop() {
		if err := connectOnce(g, s); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	goroutinesAfter, heapAfter := settle(b, g)
	b.ReportMetric(float64(goroutinesAfter-goroutines), "goroutines-left")
	b.ReportMetric(float64(int64(heapAfter)-int64(heap)), "heap-bytes-left")
}

// TestReconnectStorm: 5 subscribers of each of 1,000 interviews (200 in
// the quick suite) lose their streams at once and reconnect with
// Last-Event-ID while every interview changes. Nobody misses or repeats a
// change, and no interview has more than one upstream status call in
// flight.
func TestReconnectStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 streams")
	}
	interviews, perInterview := testenv.Size(200, 1000), 5
	g := newGateway(t, options{interval: 200 * time.Millisecond, linger: time.Minute, writeTimeout: 10 * time.Second,
		broker: sse.BrokerConfig{MaxPerClient: -1, MaxStreams: -1}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableKeepAlives: true}}
	t.Cleanup(client.CloseIdleConnections)
	sessions := make([]session, interviews)
	for i := range sessions {
		sessions[i] = g.start()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var connected, reconnects atomic.Int64
	var wg sync.WaitGroup
	results := make([][]string, interviews*perInterview)
	sem := make(chan struct{}, 200) // connections being opened at once
	for i := range results {
		s := sessions[i/perInterview]
		wg.Go(func() {
			results[i] = follow(ctx, client, g.url, s, "ID_VALIDATION_FINISHED", sem, &connected, &reconnects)
		})
	}
	eventuallyWithin(t, time.Minute, fmt.Sprintf("all %d subscribers connected", interviews*perInterview), func() bool { return connected.Load() == int64(interviews*perInterview) })
	g.broker.EndStreams() // every stream dropped at once; all reconnect
	for _, s := range sessions {
		g.setStatus(s.InterviewID, "ID_VALIDATION_FINISHED")
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("the storm did not settle within 2 minutes")
	}
	for i, got := range results {
		if len(got) != 2 || got[0] != "UNKNOWN" || got[1] != "ID_VALIDATION_FINISHED" {
			t.Fatalf("subscriber %d saw %v, want UNKNOWN then ID_VALIDATION_FINISHED once each", i, got)
		}
	}
	if n := reconnects.Load(); n < int64(interviews*perInterview) {
		t.Errorf("%d reconnects, want every subscriber to have reconnected", n)
	}
	if st := g.sim.Stats(); st.MaxStatusInFlight > 1 {
		t.Errorf("up to %d status calls of one interview in flight during the storm, want 1", st.MaxStatusInFlight)
	}
}

// retryDelay is follow's wait before it tries a failed request again:
// shorter than EventSource's 2 s, for a test that ends sooner.
const retryDelay = 100 * time.Millisecond

// follow is one subscriber that reconnects with Last-Event-ID, as a
// browser's EventSource does, until it has seen want. It returns the
// statuses it saw, in order. It counts itself connected at its first
// event, and a reconnect at each stream it opens after that. A request
// that fails or is refused (a dial cut short under the storm's load) is
// tried again after a short delay, as EventSource tries again after its
// retry delay.
func follow(ctx context.Context, client *http.Client, base string, s session, want string, sem chan struct{}, connected, reconnects *atomic.Int64) []string {
	var seen []string
	var last uint64
	for ctx.Err() == nil {
		sem <- struct{}{}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?interviewId="+s.InterviewID, nil)
		req.Header.Set("X-Token", s.Token)
		if last > 0 {
			req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
		}
		resp, err := client.Do(req)
		<-sem
		if err == nil && resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			err = errors.New(resp.Status)
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(retryDelay):
			}
			continue
		}
		if len(seen) > 0 {
			reconnects.Add(1)
		}
		done := false
		ssetest.Read(resp.Body, func(ev ssetest.Event) bool {
			u, err := ssetest.Status(ev)
			if err != nil {
				return true // the retry hint of an ended stream
			}
			last = u.Seq
			seen = append(seen, u.Status)
			if len(seen) == 1 {
				connected.Add(1)
			}
			done = u.Status == want
			return !done
		})
		resp.Body.Close()
		if done {
			return seen
		}
	}
	return seen
}
