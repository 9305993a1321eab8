package main

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestAccount(t *testing.T) {
	ms := int64(time.Millisecond)
	// Interview 0: all four changes made at 1000, 2000, 3000, 4000 ms.
	// Interview 1: change 2 failed (0), so POST_PROCESSING_FINISHED is not expected.
	changedAt := [][]int64{
		{1000 * ms, 2000 * ms, 3000 * ms, 4000 * ms},
		{1000 * ms, 0, 3000 * ms, 4000 * ms},
	}
	r := func(status int, seq, atMS int64) receipt { return receipt{Status: status, Seq: seq, At: atMS * ms} }
	tests := []struct {
		name string
		subs []subReport
		want tally
	}{
		{"all delivered", []subReport{{Interview: 0, Receipts: []receipt{r(0, 1, 10), r(1, 2, 1100), r(2, 3, 2200), r(3, 4, 3300), r(4, 5, 4400)}}},
			tally{Expected: 5, Delivered: 5, Latencies: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}}},
		{"one missed", []subReport{{Interview: 0, Receipts: []receipt{r(0, 1, 10), r(1, 2, 1100), r(3, 3, 3100), r(4, 4, 4100)}}},
			tally{Expected: 5, Delivered: 4, Missed: 1, Latencies: ms3(100, 100, 100)}},
		{"same seq twice is a duplicate", []subReport{{Interview: 0, Receipts: []receipt{r(0, 1, 10), r(0, 1, 20), r(1, 2, 1100), r(2, 3, 2100), r(3, 4, 3100), r(4, 5, 4100)}}},
			tally{Expected: 5, Delivered: 5, Duplicates: 1, Latencies: ms3(100, 100, 100, 100)}},
		{"same status with a new seq is a duplicate", []subReport{{Interview: 0, Receipts: []receipt{r(0, 1, 10), r(1, 2, 1100), r(1, 3, 1200), r(2, 4, 2100), r(3, 5, 3100), r(4, 6, 4100)}}},
			tally{Expected: 5, Delivered: 5, Duplicates: 1, Latencies: ms3(100, 100, 100, 100)}},
		{"older after newer is out of order", []subReport{{Interview: 0, Receipts: []receipt{r(0, 1, 10), r(2, 3, 2100), r(1, 2, 2150), r(3, 4, 3100), r(4, 5, 4100)}}},
			tally{Expected: 5, Delivered: 5, OutOfOrder: 1, Latencies: ms3(100, 1150, 100, 100)}},
		{"a change that failed is not expected", []subReport{{Interview: 1, Receipts: []receipt{r(0, 1, 10), r(1, 2, 1100), r(3, 3, 3100), r(4, 4, 4100)}}},
			tally{Expected: 4, Delivered: 4, Latencies: ms3(100, 100, 100)}},
		{"a status nobody set is unexpected", []subReport{{Interview: 1, Receipts: []receipt{r(0, 1, 10), r(-1, 2, 500), r(2, 3, 2100)}}},
			tally{Expected: 4, Delivered: 1, Missed: 3, Unexpected: 2}},
		{"polling: no seqs, only new statuses", []subReport{{Interview: 0, Receipts: []receipt{r(0, 0, 10), r(1, 0, 1150), r(2, 0, 2150), r(3, 0, 3150), r(4, 0, 4150)}}},
			tally{Expected: 5, Delivered: 5, Latencies: ms3(150, 150, 150, 150)}},
		{"nothing received", []subReport{{Interview: 0}, {Interview: 1}},
			tally{Expected: 9, Missed: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := account(tt.subs, changedAt)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func ms3(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, n := range v {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

func TestSummarizeLatency(t *testing.T) {
	var ls []time.Duration
	for i := 100; i >= 1; i-- {
		ls = append(ls, time.Duration(i)*time.Millisecond)
	}
	got := summarizeLatency(ls)
	want := latencySummary{P50: 51, P90: 90, P99: 99, Max: 100, N: 100}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if (summarizeLatency(nil) != latencySummary{}) {
		t.Error("no samples must give zeros")
	}
}

func TestPlanChangesKeepsChangesApart(t *testing.T) {
	interval, d := 200*time.Millisecond, 2*time.Second
	plan := planChanges(50, 4, d, interval, newTestRand())
	last := map[int]plannedChange{}
	for i, c := range plan {
		if i > 0 && c.at < plan[i-1].at {
			t.Fatal("plan not sorted by time")
		}
		if c.at < 0 || c.at > d-minChangeGap(interval) {
			t.Errorf("change at %v, outside [0, %v]", c.at, d-minChangeGap(interval))
		}
		if p, ok := last[c.interview]; ok && (c.k != p.k+1 || c.at-p.at < minChangeGap(interval)) {
			t.Errorf("interview %d: change %d at %v after change %d at %v; want the next one, %v apart", c.interview, c.k, c.at, p.k, p.at, minChangeGap(interval))
		}
		last[c.interview] = c
	}
	if len(plan) != 200 {
		t.Errorf("%d changes, want 200", len(plan))
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1234: "1,234", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
