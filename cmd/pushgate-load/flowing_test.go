package main

import (
	"testing"
	"time"
)

func TestFlowingWindowEndsWhenAFlowMayFinish(t *testing.T) {
	last := len(walk) - 1
	for _, tt := range []struct {
		name string
		plan []plannedChange
		want time.Duration
	}{
		{"no change", nil, 20 * time.Second},
		{"no change finishes a flow", []plannedChange{{at: time.Second, k: 1}, {at: 6 * time.Second, k: last - 1}}, 20 * time.Second},
		{"the first finishing change", []plannedChange{{at: time.Second, k: 1}, {at: 15 * time.Second, k: last}, {at: 16 * time.Second, k: last}}, 15 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := flowingUntil(tt.plan, 20*time.Second); got != tt.want {
				t.Errorf("flowingUntil = %v, want %v", got, tt.want)
			}
		})
	}
	at := time.Unix(100, 0)
	sent := [][]int64{{at.UnixNano() - 1, at.UnixNano(), 0}, {at.UnixNano() - 5, 0, 0}}
	if got := changesBefore(sent, at); got != 2 {
		t.Errorf("changesBefore = %d, want 2 (sent before at; unsent ones are 0)", got)
	}
}
