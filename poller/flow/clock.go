package flow

import "time"

// clockOffset moves the clock event ids are stamped with (see Now). It is
// zero but in a binary built for clock-skew tests (see clock_skewtest.go),
// where each node is given its own, as cloud machines drift apart.
var clockOffset time.Duration

// Now is the clock a node stamps event ids with: the wall clock. The Log
// takes the time from its caller; a node passes Now.
func Now() time.Time { return time.Now().Add(clockOffset) }
