package gateway

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
)

// TestShutdownGivesUpOnAStuckStage: a part that does not stop holds the
// shutdown no longer than the grace period. Serve returns on time, logs the
// stage that ran out of time, and still runs the stages after it.
func TestShutdownGivesUpOnAStuckStage(t *testing.T) {
	const grace = 500 * time.Millisecond
	ls, err := Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	g, err := New(Config{ShutdownGrace: grace, Logger: slog.New(slog.NewTextHandler(logs, nil))}, ls)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var last atomic.Bool
	g.closers = append([]closer{{name: "last part", close: func() { last.Store(true) }}}, g.closers...)
	g.onClose("stuck part", func() { <-release }) // closers run in reverse: it runs first

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // SIGTERM at once
	began := time.Now()
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx) }()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(grace + time.Second): // the grace period and a moment (late stages wait lateWait each)
		close(release)
		<-served
		t.Fatalf("Serve returned only once the stuck part let go, %v after the shutdown began (grace %v)", time.Since(began).Round(time.Millisecond), grace)
	}
	took := time.Since(began)
	close(release)
	t.Logf("shutdown with a stuck part took %v (grace %v)", took.Round(time.Millisecond), grace)
	if !strings.Contains(logs.String(), `msg="shutdown: stage ran out of time; going on without it" stage="stuck part"`) {
		t.Errorf("no log line names the stage that ran out of time:\n%s", logs.String())
	}
	if !last.Load() {
		t.Error("the stages after the stuck one did not run")
	}
}
