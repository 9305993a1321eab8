package poller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/pollertest"
)

func TestPublishesEachChangeOnceInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := &pollertest.Source{}, &pollertest.Recorder{}
		m := newManager(t, src, rec, poller.Config{Interval: time.Second, Jitter: -1})
		defer m.Watch("a")()
		steps := []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED", "SOMETHING_NEW", "FACE_VALIDATION_FINISHED", flow.StatusFinished}
		for _, s := range steps {
			src.Set("a", s)
			time.Sleep(3500 * time.Millisecond) // three reads see each status
		}
		synctest.Wait()
		got := rec.Of("a")
		if len(got) != len(steps) {
			t.Fatalf("published %d updates, want %d: %v", len(got), len(steps), got)
		}
		// A sequence number is the clock in ms at the change (synctest's
		// clock starts at 2000-01-01 and each status is seen within 1s),
		// times 1000, plus the view of its status: distinct statuses show
		// distinct views.
		start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		views := map[uint64]string{}
		for i, u := range got {
			at := start.Add(time.Duration(i) * 3500 * time.Millisecond)
			if stamp := u.Seq / 1000; u.Status != steps[i] || stamp < uint64(at.UnixMilli()) || stamp > uint64(at.Add(time.Second).UnixMilli()) {
				t.Errorf("update %d = %+v, want %s numbered by the clock after %v", i, u, steps[i], at)
			}
			if other, ok := views[u.Seq%1000]; ok {
				t.Errorf("%s and %s carry the same view %d", other, u.Status, u.Seq%1000)
			}
			views[u.Seq%1000] = u.Status
		}
		// A client that saw the second change catches up on the rest from memory.
		if since := m.Since("a", got[1].Seq); len(since) != len(steps)-2 || since[0] != got[2] || since[len(since)-1].Status != flow.StatusFinished {
			t.Fatalf("Since(second) = %v, want the changes after it", since)
		}
		if since := m.Since("a", got[len(got)-1].Seq); len(since) != 0 {
			t.Fatalf("Since(last) = %v, want nothing", since)
		}
	})
}

func TestHistoryKeepsTheLastChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{Interval: time.Second})
		for i := range flow.HistoryLen + 5 {
			src.Set("a", fmt.Sprint("S", i))
			if _, err := m.Current(context.Background(), "a"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
		since := m.Since("a", 0)
		if len(since) != flow.HistoryLen || since[0].Status != "S5" || since[flow.HistoryLen-1].Status != fmt.Sprint("S", flow.HistoryLen+4) {
			t.Fatalf("Since(0) after %d changes kept %s..%s (%d), want the last %d", flow.HistoryLen+5, since[0].Status, since[len(since)-1].Status, len(since), flow.HistoryLen)
		}
		for i := 1; i < len(since); i++ {
			if since[i].Seq <= since[i-1].Seq {
				t.Fatalf("history seqs not increasing: %v", since)
			}
		}
	})
}

func TestPushAppliesOnceAndInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := &pollertest.Source{}, &pollertest.Recorder{}
		reg := prometheus.NewRegistry()
		m := newManager(t, src, rec, poller.Config{Interval: time.Second, Metrics: reg})
		if _, _, err := m.Push("nobody", "UNKNOWN"); !errors.Is(err, flow.ErrUnknownInterview) {
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
			{"ID_VALIDATION_FINISHED", false},        // the upstream's retry
			{"GOVERNMENT_VALIDATION_FINISHED", true}, // after the ID checks
			{"FACE_VALIDATION_FINISHED", true},       //
			{"POST_PROCESSING_FINISHED", true},       // post-processing ends after the face check
			{"A_NEW_STATUS", true},                   // unknown statuses pass
			{flow.StatusFinished, true},              //
			{"FACE_VALIDATION_FINISHED", false},      // a late webhook cannot reopen the flow
			{"ANOTHER_NEW_STATUS", false},            // nor can an unknown status
			{flow.StatusManualReviewApproved, true},  // a review decided later
			{flow.StatusFinished, false},             // a late ONBOARDING_FINISHED after it
		}
		for _, s := range steps {
			src.Set("a", s.status) // the upstream agrees, so polls change nothing
			if _, changed, err := m.Push("a", s.status); err != nil || changed != s.changed {
				t.Fatalf("push %s: changed %v, %v; want %v", s.status, changed, err, s.changed)
			}
			time.Sleep(2 * time.Second)
		}
		got := rec.Of("a")
		want := []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "GOVERNMENT_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED",
			"POST_PROCESSING_FINISHED", "A_NEW_STATUS", flow.StatusFinished, flow.StatusManualReviewApproved}
		if len(got) != len(want) {
			t.Fatalf("published %v, want %v", got, want)
		}
		for i, u := range got {
			if u.Status != want[i] || (i > 0 && u.Seq <= got[i-1].Seq) {
				t.Fatalf("update %d = %+v, want %s with a higher seq", i, u, want[i])
			}
		}
		if pollertest.Pollers(t, reg) != 0 {
			t.Fatal("a pushed ONBOARDING_FINISHED did not stop the poller")
		}
	})
}

// TestPushRelaxesPolling: while pushes arrive, the interview is polled at
// PushInterval only; after PushSilence without one, at Interval again.
func TestPushRelaxesPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{Interval: time.Second, Jitter: -1, PushInterval: 15 * time.Second, PushSilence: time.Minute})
		m.Register("a", "tok")
		defer m.Watch("a")()
		time.Sleep(500 * time.Millisecond)
		m.Push("a", "ID_VALIDATION_FINISHED")
		src.Set("a", "ID_VALIDATION_FINISHED")
		before := src.Calls("a")
		time.Sleep(59 * time.Second)
		if n := src.Calls("a") - before; n < 3 || n > 5 {
			t.Fatalf("%d polls in the minute after a push, want about 4 (every 15 s)", n)
		}
		time.Sleep(30 * time.Second) // silence: back to every second
		before = src.Calls("a")
		time.Sleep(10 * time.Second)
		if n := src.Calls("a") - before; n < 9 {
			t.Fatalf("%d polls in 10 s after the pushes stopped, want about 10", n)
		}
	})
}

// TestPushOvertakesAReadInFlight: a read that began before a push may
// carry an older status; it must not undo the push. Only a read that
// takes the flow further (the webhook lagged) is taken.
func TestPushOvertakesAReadInFlight(t *testing.T) {
	for _, tc := range []struct{ read, push, want string }{
		{read: "UNKNOWN", push: "ID_VALIDATION_FINISHED", want: "ID_VALIDATION_FINISHED"},
		{read: "POST_PROCESSING_FINISHED", push: "FACE_VALIDATION_FINISHED", want: "FACE_VALIDATION_FINISHED"},
		{read: "FACE_VALIDATION_FINISHED", push: "ID_VALIDATION_FINISHED", want: "FACE_VALIDATION_FINISHED"},
		{read: flow.StatusFinished, push: "FACE_VALIDATION_FINISHED", want: flow.StatusFinished},
	} {
		t.Run(tc.read, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src, rec := &pollertest.Source{}, &pollertest.Recorder{}
				m := newManager(t, src, rec, poller.Config{Interval: time.Second})
				m.Register("a", "tok")
				if _, err := m.Current(context.Background(), "a"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				src.Hold()
				src.Set("a", tc.read)
				done := make(chan flow.Update)
				go func() {
					u, _ := m.Current(context.Background(), "a") // reads slowly
					done <- u
				}()
				synctest.Wait()
				if _, changed, _ := m.Push("a", tc.push); !changed {
					t.Fatal("push not applied")
				}
				src.Release()
				if u := <-done; u.Status != tc.want {
					t.Fatalf("the read in flight answered %+v, want %s", u, tc.want)
				}
				if got := rec.Of("a"); got[len(got)-1].Status != tc.want {
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
		src := &pollertest.Source{}
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{Interval: time.Second, Jitter: -1, PushInterval: 300 * time.Millisecond, Metrics: reg})
		m.Register("a", "tok")
		if _, err := m.Current(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		defer m.Watch("a")()
		time.Sleep(400 * time.Millisecond)
		m.Push("a", "ID_VALIDATION_FINISHED")
		time.Sleep(1200 * time.Millisecond)
		if n := pollertest.Metric(t, reg, "pushgate_status_reads_total", "answer", "single"); n > 4 {
			t.Fatalf("%v poller reads in 1.2 s after a push, want a handful", n)
		}
	})
}

// TestFinishedFlowNeverMovesBack: a read that lags behind a webhook
// does not undo it; once the flow finished, nothing the upstream says
// afterwards (a lagging read, a late webhook) moves it back, and a manual
// review decided later keeps it finished.
func TestFinishedFlowNeverMovesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := &pollertest.Source{}, &pollertest.Recorder{}
		reg := prometheus.NewRegistry()
		m := newManager(t, src, rec, poller.Config{Interval: time.Second, Metrics: reg})
		m.Register("a", "tok")
		src.Set("a", "ID_VALIDATION_FINISHED")
		m.Current(context.Background(), "a")
		m.Push("a", "FACE_VALIDATION_FINISHED")
		time.Sleep(2 * time.Second)
		if u, _ := m.Current(context.Background(), "a"); u.Status != "FACE_VALIDATION_FINISHED" {
			t.Fatalf("a poll lagging behind the push answered %s, want the pushed FACE_VALIDATION_FINISHED", u.Status)
		}
		m.Push("a", flow.StatusFinished)
		m.Push("a", "MANUAL_REVIEW_APPROVED")
		if _, changed, _ := m.Push("a", flow.StatusFinished); changed {
			t.Fatal("a late ONBOARDING_FINISHED undid the manual review")
		}
		defer m.Watch("a")()
		time.Sleep(time.Minute)
		if u, _ := m.Current(context.Background(), "a"); u.Status != "MANUAL_REVIEW_APPROVED" {
			t.Fatalf("a lagging read after the review moved the flow back to %s", u.Status)
		}
		if u, _ := m.Last("a"); !u.Finished() || pollertest.Pollers(t, reg) != 0 {
			t.Fatalf("after a manual review: %+v, %v pollers; want finished, not polled", u, pollertest.Pollers(t, reg))
		}
		var got []string
		for _, u := range rec.Of("a") {
			got = append(got, u.Status)
		}
		if strings.Join(got, ",") != "ID_VALIDATION_FINISHED,FACE_VALIDATION_FINISHED,ONBOARDING_FINISHED,MANUAL_REVIEW_APPROVED" {
			t.Fatalf("published %v", got)
		}
	})
}

// goneErr is an upstream error that says the session is gone.
type goneErr string

func (e goneErr) Error() string        { return "session gone: " + string(e) }
func (e goneErr) SessionEnded() string { return string(e) }

// TestForgottenSessionEnds: when the upstream answers that a session it
// knew is gone, subscribers get one last update carrying End, after the
// last status; nobody polls it again, and nothing changes it afterwards.
// An interview never seen answering so is only an error.
func TestForgottenSessionEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := &pollertest.Source{}, &pollertest.Recorder{}
		reg := prometheus.NewRegistry()
		m := newManager(t, src, rec, poller.Config{Interval: time.Second, Metrics: reg})
		m.Register("a", "tok")
		defer m.Watch("a")()
		time.Sleep(1500 * time.Millisecond)
		src.Set("a", "ID_VALIDATION_FINISHED")
		time.Sleep(time.Second)
		src.SetErr(goneErr(flow.EndExpired))
		time.Sleep(2 * time.Second)
		got := rec.Of("a")
		if len(got) != 3 || got[2].End != flow.EndExpired || got[2].Status != "ID_VALIDATION_FINISHED" || got[2].Seq <= got[1].Seq || !got[2].Done() {
			t.Fatalf("published %+v, want UNKNOWN, ID_VALIDATION_FINISHED, then the end after it", got)
		}
		calls := src.Calls("a")
		time.Sleep(time.Minute)
		if src.Calls("a") != calls || pollertest.Pollers(t, reg) != 0 {
			t.Fatalf("an ended session was polled again: %d -> %d calls, %v pollers", calls, src.Calls("a"), pollertest.Pollers(t, reg))
		}
		if u, err := m.Current(context.Background(), "a"); err != nil || u != got[2] {
			t.Fatalf("Current = %+v, %v; want the end, from memory", u, err)
		}
		if _, changed, _ := m.Push("a", flow.StatusFinished); changed {
			t.Fatal("a push changed an ended session")
		}
		if _, err := m.Current(context.Background(), "never-seen"); err == nil {
			t.Fatal("an interview nobody registered, gone upstream, gave no error")
		}
		if len(rec.Of("never-seen")) != 0 {
			t.Fatal("an end was published for an interview nobody registered")
		}
	})
}

// TestMovedPastNeverComesBack: a status the interview has moved past (one
// it showed before the current one, or one behind it in the flow) never
// comes back, whether a late or retried webhook brings it or a read that
// lags behind a webhook; a status it has not shown still arrives at once.
func TestMovedPastNeverComesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, rec := &pollertest.Source{}, &pollertest.Recorder{}
		m := newManager(t, src, rec, poller.Config{Interval: time.Second, Jitter: -1, PushInterval: 2 * time.Second})
		m.Register("a", "tok")
		defer m.Watch("a")()
		time.Sleep(100 * time.Millisecond) // the first read: UNKNOWN
		steps := []struct {
			push    string
			changed bool
		}{
			{"POST_PROCESSING_FINISHED", true}, // the first ID check's webhook failed: retried later
			{"FACE_VALIDATION_FINISHED", true},
			{"POST_PROCESSING_FINISHED", false},      // shown before FACE: a late retry
			{"ID_VALIDATION_FINISHED", false},        // behind the checks that need it: the late retry of the first
			{"UNKNOWN", false},                       // behind everything
			{"FACE_VALIDATION_FINISHED", false},      // the current one, again
			{"GOVERNMENT_VALIDATION_FINISHED", true}, // news
		}
		for _, s := range steps {
			if u, changed, err := m.Push("a", s.push); err != nil || changed != s.changed {
				t.Fatalf("push %s: changed %v (now %s), %v; want %v", s.push, changed, u.Status, err, s.changed)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The upstream's status API lags behind its webhooks: every read
		// answers a status the interview moved past.
		for _, lagging := range []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED"} {
			src.Set("a", lagging)
			time.Sleep(5 * time.Second) // two safety polls
			if u, err := m.Current(context.Background(), "a"); err != nil || u.Status != "GOVERNMENT_VALIDATION_FINISHED" {
				t.Fatalf("after reads answering %s: %+v, %v; want GOVERNMENT_VALIDATION_FINISHED", lagging, u, err)
			}
		}
		if src.Calls("a") < 5 {
			t.Fatalf("%d reads: the safety polls did not run", src.Calls("a"))
		}
		src.Set("a", flow.StatusFinished) // a read that takes the flow further is taken
		time.Sleep(3 * time.Second)
		var got []string
		for _, u := range rec.Of("a") {
			got = append(got, u.Status)
		}
		want := "UNKNOWN,POST_PROCESSING_FINISHED,FACE_VALIDATION_FINISHED,GOVERNMENT_VALIDATION_FINISHED,ONBOARDING_FINISHED"
		if strings.Join(got, ",") != want {
			t.Fatalf("published %v, want %s", got, want)
		}
	})
}

// TestExpiredEndsTheSession: EXPIRED, pushed or read, ends the session as
// a session the upstream forgot does: one last update with End "expired"
// after the last status, the poller stops, and nothing changes it again.
// A finished flow never expires.
func TestExpiredEndsTheSession(t *testing.T) {
	for _, pushed := range []bool{false, true} {
		name := map[bool]string{false: "read", true: "pushed"}[pushed]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src, rec := &pollertest.Source{}, &pollertest.Recorder{}
				reg := prometheus.NewRegistry()
				m := newManager(t, src, rec, poller.Config{Interval: time.Second, Metrics: reg})
				m.Register("a", "tok")
				defer m.Watch("a")()
				src.Set("a", "ID_VALIDATION_FINISHED")
				time.Sleep(1500 * time.Millisecond)
				src.Set("a", flow.StatusExpired)
				if pushed {
					if u, changed, _ := m.Push("a", flow.StatusExpired); !changed || u.End != flow.EndExpired {
						t.Fatalf("push EXPIRED: %+v, changed %v; want the end", u, changed)
					}
				}
				time.Sleep(2 * time.Second)
				got := rec.Of("a")
				if len(got) != 2 || got[1].End != flow.EndExpired || got[1].Status != "ID_VALIDATION_FINISHED" || got[1].Seq <= got[0].Seq {
					t.Fatalf("published %+v, want ID_VALIDATION_FINISHED, then the end (expired) after it", got)
				}
				calls := src.Calls("a")
				time.Sleep(time.Minute)
				if src.Calls("a") != calls || pollertest.Pollers(t, reg) != 0 {
					t.Fatalf("an expired session was polled again: %d -> %d calls, %v pollers", calls, src.Calls("a"), pollertest.Pollers(t, reg))
				}
				for _, s := range []string{flow.StatusExpired, flow.StatusFinished, "FACE_VALIDATION_FINISHED"} {
					if _, changed, _ := m.Push("a", s); changed {
						t.Fatalf("a push of %s changed an expired session", s)
					}
				}
				if u, err := m.Current(context.Background(), "a"); err != nil || u != got[1] {
					t.Fatalf("Current = %+v, %v; want the end", u, err)
				}
			})
		})
	}
	t.Run("after the flow finished", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src, rec := &pollertest.Source{}, &pollertest.Recorder{}
			m := newManager(t, src, rec, poller.Config{Interval: time.Second})
			m.Register("a", "tok")
			src.Set("a", flow.StatusFinished)
			m.Current(context.Background(), "a")
			if u, changed, _ := m.Push("a", flow.StatusExpired); changed || u.End != "" || u.Status != flow.StatusFinished {
				t.Fatalf("EXPIRED after ONBOARDING_FINISHED: %+v, changed %v; want the flow finished, its score readable", u, changed)
			}
		})
	})
}
