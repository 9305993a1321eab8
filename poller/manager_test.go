package poller_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/pollertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// retryErr is an upstream error that asks for a wait (Retry-After).
type retryErr struct{ d time.Duration }

func (e retryErr) Error() string             { return fmt.Sprintf("rate limited for %v", e.d) }
func (e retryErr) RetryDelay() time.Duration { return e.d }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newManager starts a Manager that stops with the test.
func newManager(t *testing.T, src poller.Source, pub poller.Publisher, cfg poller.Config) *poller.Manager {
	t.Helper()
	cfg.Logger = quiet
	m, err := poller.New(src, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestRegisteredTokenIsUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{})
		m.Register("a", "session-token-a")
		if _, err := m.Current(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		if tokens := src.Tokens("a"); len(tokens) != 1 || tokens[0] != "session-token-a" {
			t.Fatalf("tokens sent: %q", tokens)
		}
	})
}

func TestIdleInterviewsAreForgottenAfterRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &pollertest.Source{}
		m := newManager(t, src, &pollertest.Recorder{}, poller.Config{Retention: time.Minute, Linger: time.Second})
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
	for name, cfg := range map[string]poller.Config{
		"negative interval":    {Interval: -1},
		"negative concurrency": {MaxConcurrent: -1},
		"jitter above one":     {Jitter: 2},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := poller.New(&pollertest.Source{}, &pollertest.Recorder{}, cfg); err == nil {
				t.Fatal("New accepted an invalid Config")
			}
		})
	}
}
