package main

import (
	"context"
	"time"
)

// This file measures the upstream cost while changes flow: from the start
// of the driving phase until the first change that finishes a flow is due.
// Over that window every interview is unfinished, so every one is polled,
// and changes arrive all along; the run's whole window (changes, finished
// flows that are no longer polled, the drain) reads lower.

// flowingUntil is the offset in the driving phase at which the first
// change that finishes a flow is due (walk's last status), or d when no
// change does. plan is sorted by time.
func flowingUntil(plan []plannedChange, d time.Duration) time.Duration {
	for _, c := range plan {
		if c.k == len(walk)-1 {
			return c.at
		}
	}
	return d
}

// flowingWindow is the simulator's counters read at the end of the
// window, and when.
type flowingWindow struct {
	stats simStats
	at    time.Time
	err   error
}

// readFlowing reads the simulator's counters after wait, and delivers them
// on the returned channel (buffered: nobody need receive).
func (r *runner) readFlowing(ctx context.Context, wait time.Duration) <-chan flowingWindow {
	out := make(chan flowingWindow, 1)
	go func() {
		sleep(ctx, wait)
		s, err := r.api.stats(ctx)
		out <- flowingWindow{stats: s, at: time.Now(), err: err}
	}()
	return out
}

// changesBefore counts the changes sent before at.
func changesBefore(changedAt [][]int64, at time.Time) int {
	n := 0
	for _, row := range changedAt {
		for _, sent := range row {
			if sent != 0 && sent < at.UnixNano() {
				n++
			}
		}
	}
	return n
}
