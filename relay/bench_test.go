package relay_test

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/pushgate/pushgate/relay/relaytest"
)

// incodeBody is an upstream webhook of Incode's size.
var incodeBody = []byte(`{"interviewId":"6650c0ffee0123456789abcd","onboardingStatus":"FACE_VALIDATION_FINISHED","externalId":"customer-42","clientId":"acme","flowId":"64f1c0ffee0123456789abcd"}`)

// BenchmarkAccepted is what taking one upstream webhook costs the answer
// to the upstream, with the backend down (so the queue only grows): the
// queue in memory, and on disk (bbolt, committed and synced before the
// answer). It reports the heap each waiting delivery holds.
func BenchmarkAccepted(b *testing.B) {
	for _, where := range []string{"memory", "bbolt"} {
		b.Run(where, func(b *testing.B) {
			down := relaytest.New(b, func(int, relaytest.Attempt) (int, http.Header) { return http.StatusServiceUnavailable, nil })
			cfg := fast(down.URL)
			cfg.BackoffMin, cfg.BackoffMax, cfg.MaxQueue = time.Hour, time.Hour, b.N+1
			if where == "bbolt" {
				cfg.Dir = b.TempDir()
			}
			r := newRelay(b, cfg)
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for i := range b.N {
				r.Accepted(fmt.Sprint("iv", i%1000), bytes.Clone(incodeBody)) // each webhook its own body, as the handler reads it
			}
			b.StopTimer()
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap-B/delivery")
		})
	}
}
