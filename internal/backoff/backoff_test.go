package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	for _, tc := range []struct {
		n        int
		from, to time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{4, 2 * time.Second, 4 * time.Second}, // at the ceiling
		{60, 2 * time.Second, 4 * time.Second},
	} {
		for range 100 {
			if d := Delay(time.Second, 4*time.Second, tc.n); d < tc.from || d > tc.to {
				t.Fatalf("Delay(1s, 4s, %d) = %v, want within [%v, %v]", tc.n, d, tc.from, tc.to)
			}
		}
	}
}
