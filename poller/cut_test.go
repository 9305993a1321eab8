package poller

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// TestReadCutByRecoveriesIsNoFailure: a read that recoveries cut every
// time it was made (an upstream that hangs for this call while probes
// answer, as on a loaded node) got no answer: it is not a failed read. No
// backoff follows, the last status is served, and the next read goes out
// at the next interval.
func TestReadCutByRecoveriesIsNoFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &hanging{}
		m := readOnce(t, src, Config{Interval: time.Second, CallTimeout: time.Hour})
		time.Sleep(2 * time.Second)
		src.hang.Store(true) // every call from now on hangs until it is cut
		done := make(chan flow.Update)
		go func() {
			u, _ := m.Current(context.Background(), "a")
			done <- u
		}()
		for range 3 {
			synctest.Wait() // the call hangs
			m.recover()     // and is cut, and made again
		}
		if u := <-done; u.Status != flow.StatusUnknown {
			t.Fatalf("a read cut three times answered %+v, want the last status", u)
		}
		st := m.find("a")
		st.mu.Lock()
		failures, retryAt := st.failures, st.retryAt
		st.mu.Unlock()
		if failures != 0 || !retryAt.IsZero() {
			t.Fatalf("a read cut by recoveries counted as %d failures, backing off until %v; want none", failures, retryAt)
		}
	})
}

// hanging is a Source that answers UNKNOWN, or, once hang is set, hangs
// until its call is cut.
type hanging struct{ hang atomic.Bool }

func (h *hanging) Status(ctx context.Context, _, _ string) (string, error) {
	if h.hang.Load() {
		<-ctx.Done()
		return "", ctx.Err()
	}
	return flow.StatusUnknown, nil
}

type discard struct{}

// readOnce starts a quiet Manager on src, closed at the test's end, and
// reads interview "a" (token "tok") once.
func readOnce(t *testing.T, src Source, cfg Config) *Manager {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := New(src, discard{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	m.Register("a", "tok")
	if _, err := m.Current(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	return m
}

func (discard) Publish(flow.Update) {}

// TestChangesNumberedAboveTheIdsClientsBring: a client that comes with an
// id stamped by a node whose clock is 2 s ahead (their cluster out of
// reach) gets this node's next change numbered above it, so its stream
// takes it as news rather than as a change it has.
func TestChangesNumberedAboveTheIdsClientsBring(t *testing.T) {
	m := readOnce(t, &hanging{}, Config{Interval: time.Hour})
	ahead := flow.IDAt(flow.Now().Add(2*time.Second), flow.Update{Status: flow.StatusUnknown})
	if got := m.Since("a", ahead); len(got) != 0 {
		t.Fatalf("Since(an id ahead, showing UNKNOWN) = %v, want nothing: the client has it", got)
	}
	next, changed, err := m.Push("a", flow.StatusIDValidationFinished)
	if err != nil || !changed || next.Seq <= ahead {
		t.Fatalf("next change %+v (changed %v, %v), want it numbered above the client's %d", next, changed, err, ahead)
	}
	if send, ok := flow.Gate(ahead, next.Seq); !ok || send != next.Seq {
		t.Fatalf("Gate(%d, %d) = %d, %v; want it sent as numbered", ahead, next.Seq, send, ok)
	}
}
