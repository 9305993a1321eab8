package main

import (
	"sort"
	"time"

	"github.com/pushgate/pushgate/upstream/simulator"
)

// walk is the status path the driver walks every interview along, the
// simulator's flow; change k (1-based) sets walk[k]. Every subscriber
// first sees walk[0].
var walk = simulator.Flow

// statusIndex is the position of status in walk, or -1 for one the driver
// never sets.
func statusIndex(status string) int {
	for i, s := range walk {
		if s == status {
			return i
		}
	}
	return -1
}

// receipt is one status a subscriber received: an SSE event, or a poll
// answer that showed a new status. Short JSON names keep worker reports
// small (a few receipts per connection, tens of thousands of connections).
type receipt struct {
	Status int   `json:"s"`           // index in walk, -1 for another status
	Seq    int64 `json:"q,omitempty"` // SSE id; 0 in polling mode
	At     int64 `json:"t"`           // receipt time, Unix nanoseconds
}

// subReport is what one connected subscriber saw, in arrival order.
type subReport struct {
	Interview int       `json:"i"`           // index of the interview in the run
	Node      int       `json:"n,omitempty"` // index of the gateway node it streamed from
	Receipts  []receipt `json:"r,omitempty"`
}

// tally is the delivery accounting of a whole run.
type tally struct {
	Expected   int // statuses subscribers should have received
	Delivered  int // expected statuses received (first receipt of each)
	Missed     int // expected statuses never received
	Duplicates int // a status or seq received again by the same subscriber
	OutOfOrder int // a status or seq older than one received before it
	Unexpected int // statuses the driver never set (or set but saw fail)
	Latencies  []time.Duration
}

// account checks every connected subscriber against the changes that were
// made. changedAt[i][k-1] is when change k of interview i was sent (Unix
// nanoseconds), 0 when it was not made; a subscriber expects walk[0] and
// every change made to its interview, once each and in order. Latency is
// receipt time minus change time, so it includes the control call itself:
// an upper bound, never an underestimate.
func account(subs []subReport, changedAt [][]int64) tally {
	var t tally
	for _, s := range subs {
		made := changedAt[s.Interview]
		expected := func(k int) bool { return k == 0 || (k > 0 && k <= len(made) && made[k-1] != 0) }
		for k := range walk {
			if expected(k) {
				t.Expected++
			}
		}
		var seen [8]bool
		top, lastSeq := -1, int64(0)
		for _, r := range s.Receipts {
			switch {
			case r.Status < 0 || !expected(r.Status):
				t.Unexpected++
				continue
			case seen[r.Status] || (r.Seq != 0 && r.Seq == lastSeq):
				t.Duplicates++
				continue
			case r.Status < top || (r.Seq != 0 && r.Seq < lastSeq):
				t.OutOfOrder++
			}
			seen[r.Status] = true
			top, lastSeq = max(top, r.Status), max(lastSeq, r.Seq)
			t.Delivered++
			if r.Status > 0 {
				t.Latencies = append(t.Latencies, time.Duration(max(0, r.At-made[r.Status-1])))
			}
		}
	}
	t.Missed = t.Expected - t.Delivered
	return t
}

// latencySummary is the latency distribution in milliseconds.
type latencySummary struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

func summarizeLatency(ls []time.Duration) latencySummary {
	if len(ls) == 0 {
		return latencySummary{}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	at := func(q float64) float64 {
		i := int(q*float64(len(ls)-1) + 0.5)
		return ms(ls[i])
	}
	return latencySummary{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ls[len(ls)-1]), N: len(ls)}
}

// ms rounds to 0.1 ms, plenty for poll intervals of 100 ms and more.
func ms(d time.Duration) float64 {
	return float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
}
