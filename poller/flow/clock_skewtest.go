//go:build skewtest

package flow

import (
	"os"
	"time"
)

// In a binary built with -tags skewtest, PUSHGATE_TEST_CLOCK_OFFSET (a
// duration, e.g. -2s) moves the clock this node stamps event ids with, so
// that a test runs nodes whose clocks disagree. Go binaries do not see
// libfaketime; a release build never reads this.
func init() {
	if d, err := time.ParseDuration(os.Getenv("PUSHGATE_TEST_CLOCK_OFFSET")); err == nil {
		clockOffset = d
	}
}
