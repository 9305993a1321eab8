package poller

import "time"

// clockOffset moves the clock event ids are stamped with (see now). It is
// zero but in a binary built for clock-skew tests (see clock_skewtest.go),
// where each node is given its own, as cloud machines drift apart.
var clockOffset time.Duration

// now is the clock event ids are stamped with: the wall clock.
func now() time.Time { return time.Now().Add(clockOffset) }
