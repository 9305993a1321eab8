package sse

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// The fan-out benchmarks measure the path from Broker.Publish through the
// r3labs streams and each client's conn to its ResponseWriter, in process:
// the writers are in memory, so socket costs (measured by the load tool)
// are left out. They report the time and allocations per delivery (one
// event written to one subscriber).
//
//	go test ./sse -run '^$' -bench Fanout -benchmem

// sink is an in-memory ResponseWriter that tells when it has received an
// event.
type sink struct {
	header    http.Header
	delivered *sync.WaitGroup // Done once per status frame
	started   *sync.WaitGroup // Done on the first flush (registered)
	flushed   bool
}

func (s *sink) Header() http.Header { return s.header }
func (s *sink) WriteHeader(int)     {}
func (s *sink) Write(p []byte) (int, error) {
	if len(p) > 3 && string(p[:3]) == "id:" {
		s.delivered.Done()
	}
	return len(p), nil
}
func (s *sink) Flush() {
	if !s.flushed {
		s.flushed = true
		s.started.Done()
	}
}
func (s *sink) SetWriteDeadline(time.Time) error { return nil }

func benchmarkFanout(b *testing.B, interviews, perInterview int) {
	broker, err := NewBroker(BrokerConfig{Logger: quiet, MaxStreams: -1, MaxPerClient: -1, MaxPerInterview: -1, Heartbeat: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	var delivered, started, running sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	mem := fixedMemory(nil) // no snapshot: only published changes are counted
	for i := range interviews {
		id := fmt.Sprint("iv", i)
		for range perInterview {
			cctx, ccancel := context.WithCancel(ctx)
			c := newConn(&sink{header: http.Header{}, delivered: &delivered, started: &started}, broker, mem, id, "bench", 0, ccancel)
			if err := broker.join(c); err != nil {
				b.Fatal(err)
			}
			started.Add(1)
			running.Go(func() {
				req := httptest.NewRequestWithContext(cctx, http.MethodGet, "/events?stream="+id, nil)
				broker.srv.ServeHTTP(c, req)
				c.close()
				broker.leave(c)
			})
		}
	}
	started.Wait()
	deliveries := interviews * perInterview
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	seq := uint64(0)
	for b.Loop() {
		seq++
		delivered.Add(deliveries)
		for i := range interviews {
			broker.Publish(flow.Update{InterviewID: fmt.Sprint("iv", i), Status: "S", Seq: seq})
		}
		delivered.Wait()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	total := float64(b.N) * float64(deliveries)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/delivery")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/delivery")
	cancel()
	running.Wait()
}

func BenchmarkFanout(b *testing.B) {
	for _, c := range []struct{ interviews, subscribers int }{
		{1, 1}, {1, 100}, {1, 10_000}, {10_000, 2},
	} {
		b.Run(fmt.Sprintf("interviews=%d/subscribers=%d", c.interviews, c.subscribers), func(b *testing.B) {
			benchmarkFanout(b, c.interviews, c.subscribers)
		})
	}
}
