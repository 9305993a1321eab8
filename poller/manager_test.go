package poller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSource is a hand-written upstream: a status per interview, an
// optional error, call counts and an optional gate that holds calls.
type fakeSource struct {
	mu          sync.Mutex // protects all fields
	status      map[string]string
	err         error
	calls       map[string]int
	gate        chan struct{} // when non-nil, calls wait for it to close
	inflight    int
	maxInflight int
	tokens      []string
}

func newFakeSource() *fakeSource {
	return &fakeSource{status: map[string]string{}, calls: map[string]int{}}
}

func (f *fakeSource) Status(ctx context.Context, id, token string) (string, error) {
	f.mu.Lock()
	f.calls[id]++
	f.tokens = append(f.tokens, token)
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	gate := f.gate
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	s, ok := f.status[id]
	if !ok {
		s = "UNKNOWN"
	}
	return s, nil
}

func (f *fakeSource) set(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[id] = status
}

func (f *fakeSource) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeSource) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

type recorder struct {
	mu      sync.Mutex // protects updates
	updates []Update
}

func (r *recorder) Publish(u Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
}

func (r *recorder) of(id string) []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Update
	for _, u := range r.updates {
		if u.InterviewID == id {
			out = append(out, u)
		}
	}
	return out
}

type retryErr struct{ d time.Duration }

func (e retryErr) Error() string             { return fmt.Sprintf("rate limited for %v", e.d) }
func (e retryErr) RetryDelay() time.Duration { return e.d }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newManager(t *testing.T, src Source, pub Publisher, cfg Config) *Manager {
	t.Helper()
	cfg.Logger = quiet
	m, err := New(src, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestManyWatchersShareOnePollerAtOneCallPerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := newFakeSource(), &recorder{}
		m := newManager(t, src, rec, Config{Interval: time.Second, Jitter: 0.1})
		for range 50 {
			defer m.Watch("a")()
		}
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		// First read at once, then one every 1s to 1.1s.
		if n := src.count("a"); n < 9 || n > 11 {
			t.Fatalf("50 watchers over 10 intervals made %d upstream calls, want 9..11", n)
		}
		if got := rec.of("a"); len(got) != 1 || got[0].Status != "UNKNOWN" {
			t.Fatalf("published %v, want one UNKNOWN", got)
		}
	})
}

func TestPublishesEachChangeOnceInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := newFakeSource(), &recorder{}
		m := newManager(t, src, rec, Config{Interval: time.Second, Jitter: -1})
		defer m.Watch("a")()
		steps := []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED", "SOMETHING_NEW", "FACE_VALIDATION_FINISHED", StatusFinished}
		for _, s := range steps {
			src.set("a", s)
			time.Sleep(3500 * time.Millisecond) // three reads see each status
		}
		synctest.Wait()
		got := rec.of("a")
		if len(got) != len(steps) {
			t.Fatalf("published %d updates, want %d: %v", len(got), len(steps), got)
		}
		// A sequence number is the clock in ms at the change (synctest's
		// clock starts at 2000-01-01 and each status is seen within 1s).
		start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, u := range got {
			at := start.Add(time.Duration(i) * 3500 * time.Millisecond)
			if u.Status != steps[i] || u.Seq < uint64(at.UnixMilli()) || u.Seq > uint64(at.Add(time.Second).UnixMilli()) {
				t.Errorf("update %d = %+v, want %s numbered by the clock after %v", i, u, steps[i], at)
			}
		}
		// A client that saw the second change catches up on the rest from memory.
		if since := m.Since("a", got[1].Seq); len(since) != len(steps)-2 || since[0] != got[2] || since[len(since)-1].Status != StatusFinished {
			t.Fatalf("Since(second) = %v, want the changes after it", since)
		}
		if since := m.Since("a", got[len(got)-1].Seq); len(since) != 0 {
			t.Fatalf("Since(last) = %v, want nothing", since)
		}
	})
}

func TestHistoryKeepsTheLastChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		m := newManager(t, src, &recorder{}, Config{Interval: time.Second})
		for i := range historyLen + 5 {
			src.set("a", fmt.Sprint("S", i))
			if _, err := m.Current(context.Background(), "a"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
		since := m.Since("a", 0)
		if len(since) != historyLen || since[0].Status != "S5" || since[historyLen-1].Status != fmt.Sprint("S", historyLen+4) {
			t.Fatalf("Since(0) after %d changes kept %s..%s (%d), want the last %d", historyLen+5, since[0].Status, since[len(since)-1].Status, len(since), historyLen)
		}
		for i := 1; i < len(since); i++ {
			if since[i].Seq <= since[i-1].Seq {
				t.Fatalf("history seqs not increasing: %v", since)
			}
		}
	})
}

func TestPollerStopsAfterLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		m := newManager(t, src, &recorder{}, Config{Interval: time.Second, Linger: 10 * time.Second, Jitter: -1})
		unwatch := m.Watch("a")
		time.Sleep(2500 * time.Millisecond)
		unwatch()
		unwatch() // idempotent
		time.Sleep(9 * time.Second)
		if !m.Polling("a") {
			t.Fatal("poller stopped before the linger period ended")
		}
		// A watcher coming back within the linger keeps the same poller.
		unwatch = m.Watch("a")
		time.Sleep(5 * time.Second)
		unwatch()
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if m.Polling("a") {
			t.Fatal("poller still runs after the linger period")
		}
		n := src.count("a")
		time.Sleep(time.Minute)
		if got := src.count("a"); got != n {
			t.Fatalf("upstream calls went on after the poller stopped: %d -> %d", n, got)
		}
	})
}

func TestPollerStopsOnFinishedAndDoesNotRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := newFakeSource(), &recorder{}
		m := newManager(t, src, rec, Config{Interval: time.Second})
		defer m.Watch("a")()
		time.Sleep(1500 * time.Millisecond)
		src.set("a", StatusFinished)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if m.Polling("a") {
			t.Fatal("poller runs after ONBOARDING_FINISHED")
		}
		n := src.count("a")
		defer m.Watch("a")() // a late subscriber of a finished flow
		u, err := m.Current(context.Background(), "a")
		time.Sleep(time.Minute)
		if all := m.Since("a", 0); err != nil || !u.Finished() || len(all) != 2 || all[1] != u {
			t.Fatalf("Current = %+v, %v; want ONBOARDING_FINISHED as the second change", u, err)
		}
		if got := src.count("a"); got != n || m.Polling("a") {
			t.Fatalf("a finished interview was polled again: calls %d -> %d", n, got)
		}
	})
}

func TestConcurrentCurrentSharesOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		src.gate = make(chan struct{})
		src.set("a", "ID_VALIDATION_FINISHED")
		m := newManager(t, src, &recorder{}, Config{})
		var wg sync.WaitGroup
		results := make([]Update, 100)
		for i := range results {
			wg.Go(func() {
				u, err := m.Current(context.Background(), "a")
				if err != nil {
					t.Error(err)
				}
				results[i] = u
			})
		}
		synctest.Wait()
		close(src.gate)
		wg.Wait()
		if n := src.count("a"); n != 1 {
			t.Fatalf("100 concurrent reads made %d upstream calls, want 1", n)
		}
		for _, u := range results {
			if u != results[0] || u.Status != "ID_VALIDATION_FINISHED" || u.Seq == 0 {
				t.Fatalf("got %+v and %+v, want the same shared result", u, results[0])
			}
		}
		// Within the interval the answer comes from memory.
		if _, err := m.Current(context.Background(), "a"); err != nil || src.count("a") != 1 {
			t.Fatalf("read within the interval called upstream again (%d calls, err %v)", src.count("a"), err)
		}
		time.Sleep(time.Second)
		if _, err := m.Current(context.Background(), "a"); err != nil || src.count("a") != 2 {
			t.Fatalf("read after the interval: %d calls (want 2), err %v", src.count("a"), err)
		}
	})
}

func TestCallerGivingUpDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		src.gate = make(chan struct{})
		m := newManager(t, src, &recorder{}, Config{})
		ctx, cancel := context.WithCancel(context.Background())
		errA := make(chan error, 1)
		go func() {
			_, err := m.Current(ctx, "a")
			errA <- err
		}()
		synctest.Wait()
		resB := make(chan Update, 1)
		go func() {
			u, _ := m.Current(context.Background(), "a")
			resB <- u
		}()
		synctest.Wait()
		cancel()
		if err := <-errA; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller got %v", err)
		}
		close(src.gate)
		if u := <-resB; u.Status != "UNKNOWN" {
			t.Fatalf("second caller got %+v, want the shared result", u)
		}
		if n := src.count("a"); n != 1 {
			t.Fatalf("%d upstream calls, want 1", n)
		}
	})
}

func TestCallTimeoutFreesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		src.gate = make(chan struct{}) // never opened: upstream hangs
		m := newManager(t, src, &recorder{}, Config{CallTimeout: 2 * time.Second})
		start := time.Now()
		_, err := m.Current(context.Background(), "a")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*time.Second {
			t.Fatalf("hanging upstream: err %v after %v, want deadline exceeded after 2s", err, time.Since(start))
		}
	})
}

func TestBackoffKeepsLastStatusAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := newFakeSource(), &recorder{}
		m := newManager(t, src, rec, Config{Interval: time.Second, BackoffMax: 8 * time.Second})
		defer m.Watch("a")()
		time.Sleep(1500 * time.Millisecond)
		before := src.count("a")
		src.setErr(errors.New("upstream: unavailable"))
		time.Sleep(60 * time.Second)
		failing := src.count("a") - before
		// Waits of at least 0.5, 1, 2, 4, 4, ... seconds: at most 18 calls
		// in 60s, against 60 without backoff.
		if failing < 8 || failing > 18 {
			t.Fatalf("%d calls in 60s of failures, want 8..18 with backoff capped at 8s", failing)
		}
		u, err := m.Current(context.Background(), "a")
		if err != nil || u.Status != "UNKNOWN" {
			t.Fatalf("during the outage Current = %+v, %v; want the last known status", u, err)
		}
		src.setErr(nil)
		src.set("a", "ID_VALIDATION_FINISHED")
		time.Sleep(8*time.Second + 100*time.Millisecond)
		synctest.Wait()
		if got := rec.of("a"); len(got) != 2 || got[1].Status != "ID_VALIDATION_FINISHED" {
			t.Fatalf("after recovery published %v, want the pending change within one backoff cap", got)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		m := newManager(t, src, &recorder{}, Config{Interval: time.Second, Jitter: -1})
		defer m.Watch("a")()
		time.Sleep(1500 * time.Millisecond)
		src.setErr(retryErr{20 * time.Second})
		time.Sleep(time.Second) // the failing read
		n := src.count("a")
		src.setErr(nil)
		time.Sleep(19 * time.Second)
		if got := src.count("a"); got != n {
			t.Fatalf("%d calls before Retry-After passed", got-n)
		}
		time.Sleep(time.Second) // the retry is due 20s after the failed read
		if got := src.count("a"); got != n+1 {
			t.Fatalf("%d calls after Retry-After, want 1", got-n)
		}
	})
}

func TestConcurrencyCapHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		src.gate = make(chan struct{})
		m := newManager(t, src, &recorder{}, Config{MaxConcurrent: 3})
		for i := range 20 {
			defer m.Watch(fmt.Sprint("i", i))()
		}
		time.Sleep(time.Second)
		synctest.Wait()
		src.mu.Lock()
		inflight, maxInflight := src.inflight, src.maxInflight
		src.mu.Unlock()
		close(src.gate)
		time.Sleep(time.Second)
		if inflight != 3 || maxInflight != 3 {
			t.Fatalf("in flight %d (max %d), want the cap of 3", inflight, maxInflight)
		}
	})
}

func TestRegisteredTokenIsUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		m := newManager(t, src, &recorder{}, Config{})
		m.Register("a", "session-token-a")
		if _, err := m.Current(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		if len(src.tokens) != 1 || src.tokens[0] != "session-token-a" {
			t.Fatalf("tokens sent: %q", src.tokens)
		}
	})
}

func TestIdleInterviewsAreForgottenAfterRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		m := newManager(t, src, &recorder{}, Config{Retention: time.Minute, Linger: time.Second})
		m.Watch("a")()
		time.Sleep(30 * time.Second)
		if _, ok := m.Last("a"); !ok {
			t.Fatal("state forgotten before Retention")
		}
		time.Sleep(time.Minute)
		if _, ok := m.Last("a"); ok {
			t.Fatal("state kept after Retention")
		}
	})
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"negative interval":    {Interval: -1},
		"negative concurrency": {MaxConcurrent: -1},
		"jitter above one":     {Jitter: 2},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(newFakeSource(), &recorder{}, cfg); err == nil {
				t.Fatal("New accepted an invalid Config")
			}
		})
	}
}

// TestNoCallsWhileBackingOffBeforeAnyStatus: with nothing known yet, reads
// during a backoff answer the last error without calling upstream.
func TestNoCallsWhileBackingOffBeforeAnyStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		src.setErr(retryErr{time.Minute})
		m := newManager(t, src, &recorder{}, Config{})
		for range 20 {
			if _, err := m.Current(context.Background(), "a"); err == nil {
				t.Fatal("Current succeeded while upstream fails")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n := src.count("a"); n != 1 {
			t.Fatalf("20 reads during a 60s Retry-After made %d upstream calls, want 1", n)
		}
		src.setErr(nil)
		time.Sleep(time.Minute)
		if u, err := m.Current(context.Background(), "a"); err != nil || u.Status != "UNKNOWN" || src.count("a") != 2 {
			t.Fatalf("after Retry-After: %+v, %v, %d calls", u, err, src.count("a"))
		}
	})
}

func TestPushAppliesOnceAndInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := newFakeSource(), &recorder{}
		m := newManager(t, src, rec, Config{Interval: time.Second})
		if _, _, err := m.Push("nobody", "UNKNOWN"); !errors.Is(err, ErrUnknownInterview) {
			t.Fatalf("push for an untracked interview: %v", err)
		}
		m.Register("a", "tok")
		defer m.Watch("a")()
		time.Sleep(100 * time.Millisecond) // the first read: UNKNOWN
		steps := []struct {
			status  string
			changed bool
		}{
			{"ID_VALIDATION_FINISHED", true},
			{"ID_VALIDATION_FINISHED", false},  // the upstream's retry
			{"FACE_VALIDATION_FINISHED", true}, // a step skipped is fine
			{"ID_VALIDATION_FINISHED", false},  // a late, older webhook
			{"A_NEW_STATUS", true},             // unknown statuses pass
			{"POST_PROCESSING_FINISHED", true}, // after an unknown one, anything goes
			{StatusFinished, true},
		}
		for _, s := range steps {
			src.set("a", s.status) // the upstream agrees, so polls change nothing
			if _, changed, err := m.Push("a", s.status); err != nil || changed != s.changed {
				t.Fatalf("push %s: changed %v, %v; want %v", s.status, changed, err, s.changed)
			}
			time.Sleep(2 * time.Second)
		}
		got := rec.of("a")
		want := []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", "A_NEW_STATUS", "POST_PROCESSING_FINISHED", StatusFinished}
		if len(got) != len(want) {
			t.Fatalf("published %v, want %v", got, want)
		}
		for i, u := range got {
			if u.Status != want[i] || (i > 0 && u.Seq <= got[i-1].Seq) {
				t.Fatalf("update %d = %+v, want %s with a higher seq", i, u, want[i])
			}
		}
		if m.Polling("a") {
			t.Fatal("a pushed ONBOARDING_FINISHED did not stop the poller")
		}
	})
}

// TestPushRelaxesPolling: while pushes arrive, the interview is polled at
// PushInterval only; after PushSilence without one, at Interval again.
func TestPushRelaxesPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		m := newManager(t, src, &recorder{}, Config{Interval: time.Second, Jitter: -1, PushInterval: 15 * time.Second, PushSilence: time.Minute})
		m.Register("a", "tok")
		defer m.Watch("a")()
		time.Sleep(500 * time.Millisecond)
		m.Push("a", "ID_VALIDATION_FINISHED")
		src.set("a", "ID_VALIDATION_FINISHED")
		before := src.count("a")
		time.Sleep(59 * time.Second)
		if n := src.count("a") - before; n < 3 || n > 5 {
			t.Fatalf("%d polls in the minute after a push, want about 4 (every 15 s)", n)
		}
		time.Sleep(30 * time.Second) // silence: back to every second
		before = src.count("a")
		time.Sleep(10 * time.Second)
		if n := src.count("a") - before; n < 9 {
			t.Fatalf("%d polls in 10 s after the pushes stopped, want about 10", n)
		}
	})
}

// TestPushOvertakesAReadInFlight: a read that began before a push may
// carry an older status; it must not undo the push. If it carries a later
// step (the webhook lagged), that step is taken.
func TestPushOvertakesAReadInFlight(t *testing.T) {
	for _, tc := range []struct{ read, push, want string }{
		{read: "UNKNOWN", push: "ID_VALIDATION_FINISHED", want: "ID_VALIDATION_FINISHED"},
		{read: "FACE_VALIDATION_FINISHED", push: "ID_VALIDATION_FINISHED", want: "FACE_VALIDATION_FINISHED"},
	} {
		t.Run(tc.read, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src, rec := newFakeSource(), &recorder{}
				m := newManager(t, src, rec, Config{Interval: time.Second})
				m.Register("a", "tok")
				if _, err := m.Current(context.Background(), "a"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				src.gate = make(chan struct{})
				src.set("a", tc.read)
				done := make(chan Update)
				go func() {
					u, _ := m.Current(context.Background(), "a") // reads slowly
					done <- u
				}()
				synctest.Wait()
				if _, changed, _ := m.Push("a", tc.push); !changed {
					t.Fatal("push not applied")
				}
				close(src.gate)
				if u := <-done; u.Status != tc.want {
					t.Fatalf("the read in flight answered %+v, want %s", u, tc.want)
				}
				if got := rec.of("a"); got[len(got)-1].Status != tc.want {
					t.Fatalf("published %v, want %s last", got, tc.want)
				}
			})
		})
	}
}

// TestPollerDoesNotSpinAfterAPush: a push just before a poll is due makes
// the poll wait a full interval after the push, not loop on memory.
func TestPollerDoesNotSpinAfterAPush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		src := newFakeSource()
		m := newManager(t, src, &recorder{}, Config{Interval: time.Second, Jitter: -1, PushInterval: 300 * time.Millisecond, Metrics: reg})
		m.Register("a", "tok")
		if _, err := m.Current(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		defer m.Watch("a")()
		time.Sleep(400 * time.Millisecond)
		m.Push("a", "ID_VALIDATION_FINISHED")
		time.Sleep(1200 * time.Millisecond)
		if n := testutil.ToFloat64(m.metrics.reads.WithLabelValues("single")); n > 4 {
			t.Fatalf("%v poller reads in 1.2 s after a push, want a handful", n)
		}
	})
}

// TestCeilingWaitDoesNotAbandonCalls: waiting under the call ceiling must
// not eat the time of the call: every call sent upstream gets its answer.
func TestCeilingWaitDoesNotAbandonCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &slowSource{fakeSource: newFakeSource(), delay: 600 * time.Millisecond}
		m := newManager(t, src, &recorder{}, Config{MaxCallsPerSecond: 2, CallTimeout: time.Second})
		var wg sync.WaitGroup
		var ok atomic.Int64
		for _, id := range []string{"a", "b", "c"} {
			m.Register(id, "tok")
			wg.Go(func() {
				if _, err := m.Current(context.Background(), id); err == nil {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		calls := src.count("a") + src.count("b") + src.count("c")
		if int64(calls) != ok.Load() || ok.Load() < 2 {
			t.Fatalf("%d upstream calls for %d answers: calls were sent and then abandoned", calls, ok.Load())
		}
	})
}

type slowSource struct {
	*fakeSource
	delay time.Duration
}

func (s *slowSource) Status(ctx context.Context, id, token string) (string, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return s.fakeSource.Status(ctx, id, token)
}

// TestFlowNeverMovesBack: a poll answering an older status than a push
// (a lagging upstream replica) changes nothing, and a manual review after
// ONBOARDING_FINISHED keeps the interview finished.
func TestFlowNeverMovesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := newFakeSource(), &recorder{}
		m := newManager(t, src, rec, Config{Interval: time.Second})
		m.Register("a", "tok")
		src.set("a", "ID_VALIDATION_FINISHED")
		m.Current(context.Background(), "a")
		m.Push("a", "FACE_VALIDATION_FINISHED")
		time.Sleep(2 * time.Second)
		if u, _ := m.Current(context.Background(), "a"); u.Status != "FACE_VALIDATION_FINISHED" {
			t.Fatalf("a lagging poll moved the flow back to %s", u.Status)
		}
		m.Push("a", StatusFinished)
		m.Push("a", "MANUAL_REVIEW_APPROVED")
		defer m.Watch("a")()
		time.Sleep(time.Minute)
		if u, _ := m.Last("a"); !u.Finished() || m.Polling("a") {
			t.Fatalf("after a manual review: %+v, polling %v; want finished, not polled", u, m.Polling("a"))
		}
		var got []string
		for _, u := range rec.of("a") {
			got = append(got, u.Status)
		}
		if strings.Join(got, ",") != "ID_VALIDATION_FINISHED,FACE_VALIDATION_FINISHED,ONBOARDING_FINISHED,MANUAL_REVIEW_APPROVED" {
			t.Fatalf("published %v", got)
		}
	})
}
