package rediscluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

func TestMain(m *testing.M) {
	testenv.Parallel(4) // the parallel tests wait out outages of a Redis of their own
	goleak.VerifyTestMain(m)
}

const ttl = 300 * time.Millisecond

// testSecret seals the session tokens of the nodes newNode starts.
var testSecret = []byte("a-test-secret-of-32-bytes-length")

func newNode(t *testing.T, srv *redistest.Server) *Node {
	t.Helper()
	return newNodeWith(t, srv, Config{Secret: testSecret})
}

// newNodeWith starts a node on srv with the tests' lease TTL and timeout,
// and cfg's secrets and logger.
func newNodeWith(t *testing.T, srv *redistest.Server, cfg Config) *Node {
	t.Helper()
	cfg.URL, cfg.LeaseTTL, cfg.Timeout = srv.URL(), ttl, 500*time.Millisecond
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// kill stops a node as a crash would: no lease is released.
func kill(n *Node) {
	n.cancel()
	n.wg.Wait()
}

func TestLeaseHasOneHolderAndMovesOn(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv), newNode(t, srv)
	ctx := context.Background()
	if wait, err := a.Lead(ctx, "iv"); err != nil || wait != 0 {
		t.Fatalf("a.Lead = %v, %v; want the free lease", wait, err)
	}
	// Renewals keep it with a while b asks, over several TTLs.
	for range 10 {
		wait, err := b.Lead(ctx, "iv")
		if err != nil || wait <= 0 || wait > ttl {
			t.Fatalf("b.Lead = %v, %v; want the time a keeps it, at most %v", wait, err, ttl)
		}
		time.Sleep(ttl / 3)
	}
	if holder, _ := srv.Do("GET", "pushgate:{iv}:lease"); holder != a.ID() {
		t.Fatalf("lease holder %q, want a (%q)", holder, a.ID())
	}
	a.Release("iv")
	if wait, err := b.Lead(ctx, "iv"); err != nil || wait != 0 {
		t.Fatalf("after a released: b.Lead = %v, %v; want the lease", wait, err)
	}
	// b dies without releasing: a gets the lease once it expires.
	kill(b)
	died := time.Now()
	for {
		wait, err := a.Lead(ctx, "iv")
		if err != nil {
			t.Fatal(err)
		}
		if wait == 0 {
			break
		}
		if time.Since(died) > 2*ttl {
			t.Fatalf("lease of a dead node still held %v after it died", time.Since(died))
		}
		time.Sleep(wait)
	}
	if took := time.Since(died); took > ttl+100*time.Millisecond {
		t.Fatalf("takeover %v after the crash, want within the TTL %v", took, ttl)
	}
	// A release by a node that lost the lease leaves the new holder's.
	b.held["iv"] = struct{}{}
	b.Release("iv")
	if holder, _ := srv.Do("GET", "pushgate:{iv}:lease"); holder != a.ID() {
		t.Fatalf("a stale release removed the holder's lease: holder %q", holder)
	}
}

func TestCommitStoresOnlyOnTopOfWhatItSaw(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv), newNode(t, srv)
	ctx := context.Background()
	drainResyncs(a)
	drainResyncs(b)
	if err := a.Share(ctx, "iv", "session-token"); err != nil {
		t.Fatal(err)
	}
	first := flow.Update{InterviewID: "iv", Status: "UNKNOWN", Seq: 100}
	if stored, err := a.Commit(ctx, 0, first, false); err != nil || stored != nil {
		t.Fatalf("first commit = %v, %v; want it stored", stored, err)
	}
	if c := next(t, b); c.Update != first || c.Prev != 0 || c.Pushed {
		t.Fatalf("b heard %+v, want %+v", c, first)
	}
	// b has not heard of a newer change: its commit is refused with it.
	late := flow.Update{InterviewID: "iv", Status: "ID_VALIDATION_FINISHED", Seq: 100}
	if stored, err := b.Commit(ctx, 0, late, true); err != nil || !slices.Equal(stored, []flow.Update{first}) {
		t.Fatalf("stale commit = %v, %v; want the stored %v", stored, err, first)
	}
	second := flow.Update{InterviewID: "iv", Status: "ID_VALIDATION_FINISHED", Seq: 101}
	if stored, err := b.Commit(ctx, 100, second, true); err != nil || stored != nil {
		t.Fatalf("second commit = %v, %v; want it stored", stored, err)
	}
	if c := next(t, a); c.Update != second || c.Prev != 100 || !c.Pushed {
		t.Fatalf("a heard %+v, want %+v pushed after 100", c, second)
	}
	sh, err := b.Load(ctx, "iv")
	if err != nil || sh.Token != "session-token" || !slices.Equal(sh.History, []flow.Update{first, second}) || time.Since(sh.PushedAt) > time.Minute {
		t.Fatalf("Load = %+v, %v; want the token, both changes and the push time", sh, err)
	}
	// The end of a session travels like any change.
	end := flow.Update{InterviewID: "ended", Status: "UNKNOWN", Seq: 7, End: flow.EndNotFound}
	if stored, err := a.Commit(ctx, 0, end, false); err != nil || stored != nil {
		t.Fatalf("commit of an end = %v, %v", stored, err)
	}
	if c := next(t, b); c.Update != end {
		t.Fatalf("b heard %+v, want the end %+v", c.Update, end)
	}
	if sh, _ := b.Load(ctx, "ended"); !slices.Equal(sh.History, []flow.Update{end}) {
		t.Fatalf("Load of an ended session = %+v, want its end", sh.History)
	}
	// The history keeps the last flow.HistoryLen changes.
	for i := range flow.HistoryLen + 3 {
		u := flow.Update{InterviewID: "iv", Status: fmt.Sprint("S", i), Seq: uint64(102 + i)}
		if stored, err := a.Commit(ctx, u.Seq-1, u, false); err != nil || stored != nil {
			t.Fatalf("commit %d = %v, %v", i, stored, err)
		}
	}
	if sh, _ := a.Load(ctx, "iv"); len(sh.History) != flow.HistoryLen || sh.History[flow.HistoryLen-1].Seq != uint64(102+flow.HistoryLen+2) {
		t.Fatalf("history holds %d changes ending %v, want the last %d", len(sh.History), sh.History[len(sh.History)-1], flow.HistoryLen)
	}
	if sh, err := a.Load(ctx, "never-seen"); err != nil || sh.Token != "" || len(sh.History) != 0 {
		t.Fatalf("Load of an unknown interview = %+v, %v; want nothing", sh, err)
	}
}

func TestOutageDegradesThenResyncs(t *testing.T) {
	srv := redistest.Start(t)
	n := newNode(t, srv)
	ctx := context.Background()
	drainResyncs(n)
	if wait, err := n.Lead(ctx, "iv"); err != nil || wait != 0 || n.Degraded() != "" {
		t.Fatalf("Lead = %v, %v, degraded %q", wait, err, n.Degraded())
	}
	srv.Stop()
	if !eventually(5*time.Second, func() bool { return n.Degraded() != "" }) {
		t.Fatal("Redis stopped but the node does not report itself degraded")
	}
	began := time.Now()
	if _, err := n.Lead(ctx, "other"); err != ErrUnavailable || time.Since(began) > 50*time.Millisecond {
		t.Fatalf("Lead while degraded = %v after %v; want ErrUnavailable at once", err, time.Since(began))
	}
	if _, err := n.Commit(ctx, 0, flow.Update{InterviewID: "iv", Status: "X", Seq: 1}, false); err != ErrUnavailable {
		t.Fatalf("Commit while degraded = %v, want ErrUnavailable", err)
	}
	srv.Restart()
	c := next(t, n)
	if !c.Resync || n.Degraded() != "" {
		t.Fatalf("after Redis came back: %+v, degraded %q; want a Resync and cluster mode", c, n.Degraded())
	}
	// The restarted Redis is empty: the lease held before is taken anew.
	time.Sleep(ttl)
	if wait, err := n.Lead(ctx, "iv"); err != nil || wait != 0 {
		t.Fatalf("Lead after the restart = %v, %v", wait, err)
	}
	if holder, _ := srv.Do("GET", "pushgate:{iv}:lease"); holder != n.ID() {
		t.Fatalf("lease holder after the restart %q, want %q", holder, n.ID())
	}
}

// TestManagersShareOnePoller runs two Managers, as two gateway nodes, on
// one Redis: together they read each interview once per interval, and both
// publish every change once, in order, with the same numbers.
func TestManagersShareOnePoller(t *testing.T) {
	srv := redistest.Start(t)
	const interval, interviews = 100 * time.Millisecond, 20
	src := &pollertest.Source{}
	var recs [2]*pollertest.Recorder
	var ms [2]*poller.Manager
	var regs [2]*prometheus.Registry
	for i := range ms {
		recs[i], regs[i] = &pollertest.Recorder{}, prometheus.NewRegistry()
		m := mustManager(t, src, recs[i], poller.Config{Interval: interval, Cluster: newNode(t, srv), Linger: time.Minute, Metrics: regs[i]})
		t.Cleanup(m.Close)
		ms[i] = m
	}
	ids := make([]string, interviews)
	for i := range ids {
		ids[i] = fmt.Sprint("iv", i)
		src.Set(ids[i], "UNKNOWN")
		ms[i%2].Register(ids[i], "token-"+ids[i])
		for _, m := range ms {
			if _, err := m.Current(context.Background(), ids[i]); err != nil {
				t.Fatalf("Current(%s): %v", ids[i], err)
			}
			defer m.Watch(ids[i])()
		}
	}
	steps := []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", flow.StatusFinished}
	time.Sleep(3 * interval)
	began, before := time.Now(), src.Total()
	for _, s := range steps[1:3] {
		for _, id := range ids {
			src.Set(id, s)
		}
		time.Sleep(5 * interval)
	}
	elapsed, calls := time.Since(began), src.Total()-before
	perInterval := float64(calls) / interviews / (float64(elapsed) / float64(interval))
	t.Logf("%d calls for %d interviews over %v: %.2f per interview per interval", calls, interviews, elapsed.Round(time.Millisecond), perInterval)
	if perInterval > 1.05 {
		t.Fatalf("two nodes made %.2f calls per interview per interval, want at most 1.05", perInterval)
	}
	for _, id := range ids {
		src.Set(id, flow.StatusFinished)
	}
	time.Sleep(5 * interval)
	for _, id := range ids {
		if toks := src.Tokens(id); len(toks) == 0 || toks[len(toks)-1] != "token-"+id {
			t.Fatalf("%s read with tokens %q", id, toks)
		}
		a, b := recs[0].Of(id), recs[1].Of(id)
		if !slices.Equal(a, b) || len(a) != len(steps) {
			t.Fatalf("%s: node A published %v, node B %v; want the same %d changes", id, a, b, len(steps))
		}
		for i, u := range a {
			if u.Status != steps[i] || (i > 0 && u.Seq <= a[i-1].Seq) {
				t.Fatalf("%s: change %d = %+v, want %s with a higher seq", id, i, u, steps[i])
			}
		}
	}
	for i, reg := range regs {
		if n := pollertest.Pollers(t, reg); n != 0 {
			t.Fatalf("node %d: %v pollers run after every flow finished", i, n)
		}
	}
}

// TestPushOnAnyNodeReachesAll: the upstream's webhook lands on a node that
// never saw the interview; the change is numbered once and published by
// both nodes, and that node can read the session token the other stored.
func TestPushOnAnyNodeReachesAll(t *testing.T) {
	srv := redistest.Start(t)
	src := &pollertest.Source{}
	var recs [2]*pollertest.Recorder
	var ms [2]*poller.Manager
	for i := range ms {
		recs[i] = &pollertest.Recorder{}
		m := mustManager(t, src, recs[i], poller.Config{Interval: time.Hour, Cluster: newNode(t, srv)})
		t.Cleanup(m.Close)
		ms[i] = m
	}
	ms[0].Register("iv", "token-iv")
	first, err := ms[0].Current(context.Background(), "iv")
	if err != nil {
		t.Fatal(err)
	}
	defer ms[0].Watch("iv")()
	if _, _, err := ms[1].Push("never-registered", "ID_VALIDATION_FINISHED"); err != flow.ErrUnknownInterview {
		t.Fatalf("push of an interview no node knows: %v, want ErrUnknownInterview", err)
	}
	u, changed, err := ms[1].Push("iv", "ID_VALIDATION_FINISHED")
	if err != nil || !changed || u.Seq <= first.Seq {
		t.Fatalf("push on the other node = %+v, %v, %v; want a new change above %d", u, changed, err, first.Seq)
	}
	eventually(5*time.Second, func() bool { return len(recs[0].Of("iv")) >= 2 })
	if got := recs[0].Of("iv"); !slices.Equal(got, []flow.Update{first, u}) {
		t.Fatalf("the watching node published %v, want %v then the pushed %v", got, first, u)
	}
	if _, changed, _ := ms[0].Push("iv", "ID_VALIDATION_FINISHED"); changed {
		t.Fatal("the upstream's retry of the same webhook on the first node made a second change")
	}
	if tok := ms[1].SessionToken("iv"); tok != "token-iv" {
		t.Fatalf("SessionToken on the other node = %q, want the one the first node registered", tok)
	}
	if calls := src.Total(); calls != 1 {
		t.Fatalf("%d upstream calls, want only the first node's snapshot", calls)
	}
}

// next waits for the node's next change.
func next(t *testing.T, n *Node) poller.Change {
	t.Helper()
	select {
	case c := <-n.Changes():
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change heard within 5s")
		return poller.Change{}
	}
}

// eventually reports whether cond holds within wait, polling it.
func eventually(wait time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// drainResyncs takes the Resync a new subscription owes.
func drainResyncs(n *Node) {
	deadline := time.After(2 * time.Second)
	for {
		select {
		case c := <-n.Changes():
			if c.Resync {
				return
			}
		case <-deadline:
			return
		}
	}
}
