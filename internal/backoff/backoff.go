// Package backoff is the wait between retries of a call that keeps
// failing, shared by the pollers' upstream reads and the relay's
// deliveries.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Delay is the wait after n consecutive failures: base doubled per
// failure after the first, at most ceiling, the upper half random so that
// the retries of many callers spread.
func Delay(base, ceiling time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + rand.N(d/2+1)
}
