package relay_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/relay/relaytest"
)

// fast is a Config for tests: retries within milliseconds.
func fast(urls ...string) relay.Config {
	return relay.Config{URLs: urls, Secrets: []string{relaytest.Secret}, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
		Poll: 10 * time.Millisecond, Timeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)}
}

func newRelay(t testing.TB, cfg relay.Config) *relay.Relay {
	t.Helper()
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// queues are the queues a Relay is held to the same contract on; each
// call makes a new, empty one (nil: the Relay's own, in memory).
var queues = []struct {
	name string
	make func(t *testing.T) relay.Queue
}{
	{"memory", func(*testing.T) relay.Queue { return nil }},
	{"redis", func(t *testing.T) relay.Queue { return newRedisQueue(t, redistest.Start(t), relay.RedisConfig{}) }},
}

// eachQueue runs scenario on a Relay of every queue: nil (memory), and
// Redis.
func eachQueue(t *testing.T, scenario func(*testing.T, relay.Queue)) {
	for _, q := range queues {
		t.Run(q.name, func(t *testing.T) { scenario(t, q.make(t)) })
	}
}

// eventually polls cond until it holds, or fails the test after 10s (a
// guard against hanging, sized for a loaded CI machine, not a measurement).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	const within = 10 * time.Second
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
	}
}
