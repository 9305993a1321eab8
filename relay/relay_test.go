package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/relay/relaytest"
)

// verdicts is a Scorer: the verdict of each interview, or an error.
type verdicts struct {
	fails atomic.Int32 // the next calls that fail
	calls atomic.Int32
}

func (v *verdicts) Verdict(_ context.Context, id string) (string, error) {
	v.calls.Add(1)
	if v.fails.Add(-1) >= 0 {
		return "", errors.New("upstream unavailable")
	}
	return "WARN", nil
}

// finish walks an interview through a flow, as the poller tells the relay.
func finish(r *relay.Relay, id string, statuses ...string) {
	prev := flow.Update{}
	for i, s := range statuses {
		next := flow.Update{InterviewID: id, Status: s, Seq: uint64(1000 + i)}
		r.Observed(prev, next)
		prev = next
	}
}

// TestRelayDeliversEveryKind: an upstream webhook arrives byte for byte,
// then session.status for each change and one session.ended with the
// verdict, each signed, in order, with the external id where known.
func TestRelayDeliversEveryKind(t *testing.T) { eachQueue(t, relayDeliversEveryKind) }

func relayDeliversEveryKind(t *testing.T, q relay.Queue) {
	rcv := relaytest.New(t, nil)
	cfg := fast(rcv.URL + "/hook")
	cfg.Queue, cfg.Scorer = q, &verdicts{}
	r := newRelay(t, cfg)
	raw := []byte(`{"interviewId":"iv1","onboardingStatus":"ID_VALIDATION_FINISHED","externalId":12345,"clientId":"acme", "flowId" : "f"}`)
	r.Accepted("iv1", raw)
	finish(r, "iv1", "UNKNOWN", "ID_VALIDATION_FINISHED", flow.StatusFinished)
	got := rcv.WaitAccepted(5, 20*time.Second)
	for i, a := range got {
		if !a.Valid {
			t.Fatalf("attempt %d %s: the signature does not verify", i, a.ID)
		}
	}
	if string(got[0].Body) != string(raw) || got[0].Kind != relay.KindUpstream {
		t.Fatalf("first: %s %q, want the upstream webhook byte for byte", got[0].Kind, got[0].Body)
	}
	var kinds []string
	for _, a := range got[1:] {
		var b map[string]any
		if err := json.Unmarshal(a.Body, &b); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, fmt.Sprint(b["type"], ":", b["onboardingStatus"], ":", b["externalId"], ":", b["verdict"], ":", b["reason"]))
	}
	want := []string{
		"session.status:UNKNOWN:12345:<nil>:<nil>",
		"session.status:ID_VALIDATION_FINISHED:12345:<nil>:<nil>",
		"session.status:ONBOARDING_FINISHED:12345:<nil>:<nil>",
		"session.ended:ONBOARDING_FINISHED:12345:WARN:finished",
	}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Fatalf("events\n%v\nwant\n%v", kinds, want)
	}
}

// TestRelayEndsOncePerSession: a session ends once, whatever follows (a
// manual review); an end by expiry carries its reason and a null verdict.
func TestRelayEndsOncePerSession(t *testing.T) {
	rcv := relaytest.New(t, nil)
	cfg := fast(rcv.URL)
	cfg.Kinds = []string{relay.KindEnded}
	cfg.Scorer = &verdicts{}
	r := newRelay(t, cfg)
	finish(r, "a", "UNKNOWN", flow.StatusFinished, flow.StatusManualReviewApproved)
	r.Observed(flow.Update{InterviewID: "b", Status: "FACE_VALIDATION_FINISHED", Seq: 5}, flow.Update{InterviewID: "b", Status: "FACE_VALIDATION_FINISHED", Seq: 6, End: flow.EndExpired})
	rcv.WaitAccepted(2, 20*time.Second)
	time.Sleep(100 * time.Millisecond) // ten polls: nothing else comes
	ended := map[string]string{}
	for _, a := range rcv.All() {
		var b struct{ InterviewID string }
		json.Unmarshal(a.Body, &b)
		if _, twice := ended[b.InterviewID]; twice {
			t.Fatalf("%s ended twice", b.InterviewID)
		}
		ended[b.InterviewID] = string(a.Body)
	}
	if a := ended["a"]; !strings.Contains(a, `"reason":"finished"`) || !strings.Contains(a, `"verdict":"WARN"`) {
		t.Fatalf("a: %s", a)
	}
	if b := ended["b"]; !strings.Contains(b, `"reason":"expired"`) || !strings.Contains(b, `"verdict":null`) {
		t.Fatalf("b: %s", b)
	}
}

// TestRelayRetriesWithTheSameID: a receiver that answers 503 three times
// gets the same event, under the same webhook-id, a fourth time; each
// attempt is signed afresh.
func TestRelayRetriesWithTheSameID(t *testing.T) { eachQueue(t, relayRetriesWithTheSameID) }

func relayRetriesWithTheSameID(t *testing.T, q relay.Queue) {
	rcv := relaytest.New(t, func(n int, _ relaytest.Attempt) (int, http.Header) {
		if n < 3 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusNoContent, nil
	})
	reg := prometheus.NewRegistry()
	cfg := fast(rcv.URL)
	cfg.Queue, cfg.Metrics = q, reg
	r := newRelay(t, cfg)
	r.Accepted("iv", []byte(`{"interviewId":"iv","onboardingStatus":"UNKNOWN"}`))
	rcv.WaitAccepted(1, 20*time.Second)
	all := rcv.All()
	if len(all) != 4 {
		t.Fatalf("%d attempts, want 4", len(all))
	}
	for i, a := range all {
		if a.ID != all[0].ID || !a.Valid {
			t.Fatalf("attempt %d: id %s (first %s), valid %v", i, a.ID, all[0].ID, a.Valid)
		}
	}
	if n := metric(t, reg, "retried"); n != 3 {
		t.Fatalf("%v retries counted, want 3", n)
	}
}

// TestRelayHonoursRetryAfter: a 429 with Retry-After: 1 is tried again no
// sooner than a second later.
func TestRelayHonoursRetryAfter(t *testing.T) {
	rcv := relaytest.New(t, func(n int, _ relaytest.Attempt) (int, http.Header) {
		if n == 0 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	})
	r := newRelay(t, fast(rcv.URL))
	r.Accepted("iv", []byte(`{}`))
	rcv.WaitAccepted(1, 20*time.Second)
	all := rcv.All()
	if gap := all[1].At.Sub(all[0].At); gap < time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 1", gap)
	}
}

// TestRelayFailsAndRedelivers: a 4xx other than 408 and 429, and a
// redirect, fail at once (the redirect not followed); failed deliveries
// are listed, and redelivered under the same id.
func TestRelayFailsAndRedelivers(t *testing.T) { eachQueue(t, relayFailsAndRedelivers) }

func relayFailsAndRedelivers(t *testing.T, q relay.Queue) {
	var fixed atomic.Bool
	followed := relaytest.New(t, nil)
	rcv := relaytest.New(t, func(_ int, a relaytest.Attempt) (int, http.Header) {
		switch {
		case fixed.Load():
			return http.StatusOK, nil
		case strings.Contains(string(a.Body), "redirect"):
			return http.StatusTemporaryRedirect, http.Header{"Location": {followed.URL}}
		}
		return http.StatusBadRequest, nil
	})
	cfg := fast(rcv.URL)
	cfg.Queue = q
	r := newRelay(t, cfg)
	r.Accepted("a", []byte(`{"n":"bad request"}`))
	r.Accepted("b", []byte(`{"n":"redirect"}`))
	var failed []relay.Delivery
	eventually(t, "2 failed deliveries", func() bool {
		var err error
		if failed, err = r.Failed(context.Background(), 10); err != nil {
			t.Fatalf("failed %v, %v; want 2", failed, err)
		}
		return len(failed) >= 2
	})
	if n := len(rcv.All()); n != 2 || len(followed.All()) != 0 {
		t.Fatalf("%d attempts, %d at the redirect's target: want one each, the redirect not followed", n, len(followed.All()))
	}
	for _, d := range failed {
		if d.Attempts != 1 || d.LastError == "" || d.FailedAt.IsZero() {
			t.Fatalf("failed delivery %+v: want one attempt, its error and when it failed", d)
		}
	}
	fixed.Store(true)
	again, err := r.Redeliver(context.Background(), failed[0].ID)
	if err != nil || len(again) != 1 {
		t.Fatalf("redeliver: %v, %v", again, err)
	}
	if got := rcv.WaitAccepted(1, 20*time.Second); got[0].ID != failed[0].ID || !got[0].Valid {
		t.Fatalf("redelivered %+v, want %s", got[0], failed[0].ID)
	}
	if left, _ := r.Failed(context.Background(), 10); len(left) != 1 || left[0].ID != failed[1].ID {
		t.Fatalf("still failed: %v, want the other one", left)
	}
	if again, _ := r.Redeliver(context.Background(), "msg_nope"); len(again) != 0 {
		t.Fatalf("redelivering an unknown id: %v", again)
	}
}

// metric is the count of upstream deliveries with outcome.
func metric(t testing.TB, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	return metricOf(t, reg, relay.KindUpstream, outcome)
}

// metricOf is the count of kind's deliveries with outcome.
func metricOf(t testing.TB, reg *prometheus.Registry, kind, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "pushgate_relay_events_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no pushgate_relay_events_total{kind=%q,outcome=%q}", kind, outcome)
	return 0
}

// TestRelayKeepsOrderPerInterview: the receiver refuses the first attempt
// of every event; each interview's events still arrive in the order they
// were made, each once.
func TestRelayKeepsOrderPerInterview(t *testing.T) { eachQueue(t, relayKeepsOrderPerInterview) }

func relayKeepsOrderPerInterview(t *testing.T, q relay.Queue) {
	seen := map[string]bool{}
	rcv := relaytest.New(t, func(_ int, a relaytest.Attempt) (int, http.Header) {
		if !seen[a.ID] { // under the receiver's lock
			seen[a.ID] = true
			return http.StatusBadGateway, nil
		}
		return http.StatusOK, nil
	})
	cfg := fast(rcv.URL)
	cfg.Queue = q
	r := newRelay(t, cfg)
	const interviews, changes = 5, 10
	for k := range changes {
		for i := range interviews {
			r.Accepted(fmt.Sprint("iv", i), fmt.Appendf(nil, `{"interviewId":"iv%d","n":%d}`, i, k))
		}
	}
	got := rcv.WaitAccepted(interviews*changes, 20*time.Second)
	next := map[string]int{}
	ids := map[string]bool{}
	for _, a := range got {
		var b struct {
			InterviewID string
			N           int
		}
		json.Unmarshal(a.Body, &b)
		if b.N != next[b.InterviewID] || ids[a.ID] {
			t.Fatalf("%s got change %d (id %s), want %d, each once", b.InterviewID, b.N, a.ID, next[b.InterviewID])
		}
		next[b.InterviewID]++
		ids[a.ID] = true
	}
}

// TestRelayGivesUpAfterMaxAge: a receiver that never answers 2xx gets the
// event until MaxAge, then it fails, with the last error kept.
func TestRelayGivesUpAfterMaxAge(t *testing.T) {
	rcv := relaytest.New(t, func(int, relaytest.Attempt) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	cfg := fast(rcv.URL)
	cfg.MaxAge = 300 * time.Millisecond
	r := newRelay(t, cfg)
	r.Accepted("iv", []byte(`{}`))
	var failed []relay.Delivery
	eventually(t, "a failed delivery", func() bool {
		failed, _ = r.Failed(context.Background(), 1)
		return len(failed) > 0
	})
	if d := failed[0]; d.Attempts < 2 || !strings.Contains(d.LastError, "HTTP 503") || !strings.Contains(d.LastError, "max age") {
		t.Fatalf("failed %+v: want several attempts, the last error and the max age named", d)
	}
}

// TestRelayDropsWhenFull: past MaxQueue deliveries waiting, new events are
// dropped and counted, never queued in secret.
func TestRelayDropsWhenFull(t *testing.T) {
	release := make(chan struct{})
	hold := relaytest.New(t, func(n int, _ relaytest.Attempt) (int, http.Header) {
		if n == 0 {
			<-release
		}
		return http.StatusOK, nil
	})
	reg := prometheus.NewRegistry()
	cfg := fast(hold.URL)
	cfg.MaxQueue, cfg.Metrics = 3, reg
	r := newRelay(t, cfg)
	for i := range 5 {
		r.Accepted("iv", fmt.Appendf(nil, `{"n":%d}`, i))
	}
	close(release)
	got := hold.WaitAccepted(3, 20*time.Second)
	time.Sleep(100 * time.Millisecond)
	if len(hold.All()) != 3 || string(got[2].Body) != `{"n":2}` {
		t.Fatalf("%d delivered (%q last), want the first 3", len(hold.All()), got[len(got)-1].Body)
	}
	if n := metric(t, reg, "dropped"); n != 2 {
		t.Fatalf("%v dropped counted, want 2", n)
	}
}

// TestRelayKeepsItsQueueOnDisk: with Dir, what was queued survives the
// relay's end and is delivered by the next one, under the same ids.
func TestRelayKeepsItsQueueOnDisk(t *testing.T) {
	var up atomic.Bool
	rcv := relaytest.New(t, func(int, relaytest.Attempt) (int, http.Header) {
		if up.Load() {
			return http.StatusOK, nil
		}
		return http.StatusServiceUnavailable, nil
	})
	dir := t.TempDir()
	cfg := fast(rcv.URL)
	cfg.Dir = dir
	first, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		first.Accepted(fmt.Sprint("iv", i%2), fmt.Appendf(nil, `{"n":%d}`, i))
	}
	rcv.WaitAttempts(4, 10*time.Second) // the two lanes' heads, tried and retried
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	idOf := map[string]string{} // body -> the id it was sent under
	for _, a := range rcv.All() {
		idOf[string(a.Body)] = a.ID
	}
	up.Store(true)
	newRelay(t, cfg)
	got := rcv.WaitAccepted(3, 20*time.Second)
	var order []string
	for _, a := range got {
		if id, ok := idOf[string(a.Body)]; (ok && id != a.ID) || !a.Valid {
			t.Fatalf("%s under id %s (before: %s), valid %v; want the id it had", a.Body, a.ID, id, a.Valid)
		}
		if strings.Contains(string(a.Body), `"n":0`) || strings.Contains(string(a.Body), `"n":2`) {
			order = append(order, string(a.Body))
		}
	}
	if len(got) != 3 || strings.Join(order, " ") != `{"n":0} {"n":2}` {
		t.Fatalf("delivered %d, iv0's in the order %v; want 3, iv0's in the order made", len(got), order)
	}
}

// TestRelayCutsSlowReceivers: an attempt that outlasts Timeout is cut and
// tried again, under the same id.
func TestRelayCutsSlowReceivers(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		first := len(ids) == 1
		mu.Unlock()
		if first {
			select { // held past the relay's timeout
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := fast(srv.URL)
	cfg.Timeout = 200 * time.Millisecond
	r := newRelay(t, cfg)
	r.Accepted("iv", []byte(`{}`))
	eventually(t, "a second attempt after the first was held past the timeout", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if ids[0] != ids[1] || ids[0] == "" {
		t.Fatalf("attempts %q, want one id", ids)
	}
}

func TestRelayRefusesBadConfig(t *testing.T) {
	ok := fast("https://backend.example/hook")
	for name, change := range map[string]func(*relay.Config){
		"no URL":             func(c *relay.Config) { c.URLs = nil },
		"ftp URL":            func(c *relay.Config) { c.URLs = []string{"ftp://backend.example/"} },
		"relative URL":       func(c *relay.Config) { c.URLs = []string{"/hook"} },
		"URL with a user":    func(c *relay.Config) { c.URLs = []string{"https://u:p@backend.example/"} },
		"no secret":          func(c *relay.Config) { c.Secrets = nil },
		"short secret":       func(c *relay.Config) { c.Secrets = []string{"whsec_c2hvcnQ="} },
		"secret not whsec_":  func(c *relay.Config) { c.Secrets = []string{"3mt/9TPvcPBVZmN5Yyr8tB4O4gMMfKjQKVzoYVTiuMU="} },
		"unknown kind":       func(c *relay.Config) { c.Kinds = []string{"status", "everything"} },
		"negative timeout":   func(c *relay.Config) { c.Timeout = -time.Second },
		"backoff min > max":  func(c *relay.Config) { c.BackoffMin, c.BackoffMax = time.Minute, time.Second },
		"dir that is a file": func(c *relay.Config) { c.Dir = "relay_test.go" },
	} {
		cfg := ok
		change(&cfg)
		if r, err := relay.New(cfg); err == nil {
			r.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRelayRedeliversAfterMaxAge: an event that failed at its max age is
// redelivered afresh (its max age counts from the redelivery), and its
// last error stays until the next attempt.
func TestRelayRedeliversAfterMaxAge(t *testing.T) {
	var up atomic.Bool
	rcv := relaytest.New(t, func(int, relaytest.Attempt) (int, http.Header) {
		if up.Load() {
			return http.StatusOK, nil
		}
		return http.StatusServiceUnavailable, nil
	})
	cfg := fast(rcv.URL)
	cfg.MaxAge = 300 * time.Millisecond
	r := newRelay(t, cfg)
	r.Accepted("iv", []byte(`{"n":1}`))
	var failed []relay.Delivery
	eventually(t, "a failed delivery", func() bool {
		failed, _ = r.Failed(context.Background(), 1)
		return len(failed) > 0
	})
	up.Store(true)
	again, err := r.Redeliver(context.Background(), failed[0].ID)
	if err != nil || len(again) != 1 || again[0].LastError == "" {
		t.Fatalf("redeliver: %+v, %v; want it back, its last error kept", again, err)
	}
	if got := rcv.WaitAccepted(1, 10*time.Second); got[0].ID != failed[0].ID {
		t.Fatalf("delivered %s, want %s", got[0].ID, failed[0].ID)
	}
}

// TestRelayBacksOffWhileTheVerdictFails: a verdict that cannot be read is
// tried again with a wait that grows, as a failed delivery is; once read,
// the session.ended carries it.
func TestRelayBacksOffWhileTheVerdictFails(t *testing.T) {
	rcv := relaytest.New(t, nil)
	scorer := &verdicts{}
	scorer.fails.Store(5)
	cfg := fast(rcv.URL)
	cfg.Kinds, cfg.Scorer = []string{relay.KindEnded}, scorer
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, time.Second
	r := newRelay(t, cfg)
	began := time.Now()
	finish(r, "iv", flow.StatusFinished)
	got := rcv.WaitAccepted(1, 20*time.Second)
	if e := got[0].Event(); e.Verdict == nil || *e.Verdict != "WARN" {
		t.Fatalf("%s, want the verdict once it could be read", got[0].Body)
	}
	// Five failures wait at least 5+10+20+40+80 ms (the lower halves of
	// 10, 20, 40, 80 and 160 ms): not the 50 ms of a wait that never grows.
	if n, took := scorer.calls.Load(), time.Since(began); n != 6 || took < 155*time.Millisecond {
		t.Fatalf("%d verdict reads in %v, want 6, with a growing wait", n, took)
	}
}

// TestRelayCloseWhileReadingTheVerdict: a Close while the verdict is read
// puts the delivery back due now, no attempt counted, as a Close during a
// send does.
func TestRelayCloseWhileReadingTheVerdict(t *testing.T) {
	q := &oneLane{retried: make(chan retried, 1)}
	scorer := &blocked{called: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	cfg := fast("https://backend.example/hook")
	cfg.Queue, cfg.Metrics, cfg.Kinds, cfg.Scorer = q, reg, []string{relay.KindEnded}, scorer
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	finish(r, "iv", flow.StatusFinished)
	select {
	case <-scorer.called:
	case <-time.After(10 * time.Second):
		r.Close()
		t.Fatal("the verdict was never read")
	}
	r.Close()
	var got retried
	select {
	case got = <-q.retried:
	default: // Close waited for the delivery
		t.Fatal("not put back in its queue")
	}
	if got.d.Attempts != 0 || got.d.LastError != "" || got.at.After(time.Now()) {
		t.Fatalf("put back with %d attempts, error %q, due in %v; want none, due now", got.d.Attempts, got.d.LastError, time.Until(got.at))
	}
	if n := metricOf(t, reg, relay.KindEnded, "retried"); n != 0 {
		t.Fatalf("%v retries counted, want 0", n)
	}
}

// blocked is a Scorer that reads no verdict until its context ends.
type blocked struct{ called chan struct{} }

func (b *blocked) Verdict(ctx context.Context, _ string) (string, error) {
	select {
	case b.called <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return "", ctx.Err()
}

// oneLane is a queue of the first delivery added alone: Next gives it
// once, and Retry records how it was put back.
type oneLane struct {
	relay.Queue
	mu      sync.Mutex
	d       *relay.Delivery
	claimed bool
	retried chan retried
}

type retried struct {
	d  relay.Delivery
	at time.Time
}

func (q *oneLane) Add(_ context.Context, ds []relay.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.d == nil && len(ds) > 0 {
		q.d = &ds[0]
	}
	return nil
}

func (q *oneLane) Next(context.Context, time.Time) (relay.Delivery, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.d == nil || q.claimed {
		return relay.Delivery{}, false, nil
	}
	q.claimed = true
	return *q.d, true, nil
}

func (q *oneLane) Retry(_ context.Context, d relay.Delivery, at time.Time) error {
	q.retried <- retried{d, at}
	return nil
}

func (q *oneLane) Stats(context.Context) (relay.Stats, error) { return relay.Stats{}, nil }
func (q *oneLane) Close() error                               { return nil }

// TestRelayDropsBeyondItsBytes: the node's queue is capped by weight too,
// not only by count: past it, events are dropped and counted.
func TestRelayDropsBeyondItsBytes(t *testing.T) {
	rcv := relaytest.New(t, func(int, relaytest.Attempt) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	reg := prometheus.NewRegistry()
	cfg := fast(rcv.URL)
	body := []byte(`{"n":"` + strings.Repeat("x", 1000) + `"}`)
	cfg.MaxQueueBytes, cfg.Metrics = 3*int64(len(body)+512), reg
	r := newRelay(t, cfg)
	for range 5 {
		r.Accepted("iv", body)
	}
	if n := metric(t, reg, "dropped"); n != 2 {
		t.Fatalf("%v dropped, want 2: three fit", n)
	}
}

// TestRelayCountsWhatMemoryLoses: events the queue could not take wait in
// memory; those still there when the relay closes are counted as dropped,
// never lost in silence.
func TestRelayCountsWhatMemoryLoses(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := fast("https://backend.example/hook")
	cfg.Queue, cfg.Metrics = unreachable{}, reg
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.Accepted("iv", []byte(`{}`))
	}
	if n := metric(t, reg, "dropped"); n != 0 {
		t.Fatalf("%v dropped before the end, want 0: they wait in memory", n)
	}
	r.Close()
	if n := metric(t, reg, "dropped"); n != 3 {
		t.Fatalf("%v dropped at the end, want the 3 that never reached the queue", n)
	}
}

// unreachable is a queue out of reach: Redis down.
type unreachable struct{ relay.Queue }

func (unreachable) Add(context.Context, []relay.Delivery) error {
	return errors.New("connection refused")
}
func (unreachable) Next(context.Context, time.Time) (relay.Delivery, bool, error) {
	return relay.Delivery{}, false, errors.New("connection refused")
}
func (unreachable) Stats(context.Context) (relay.Stats, error) {
	return relay.Stats{}, errors.New("connection refused")
}
func (unreachable) Close() error { return nil }
