package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// What a soak worker counts and reports: its progress while it runs, and
// its tally, summed over the generations as each ends (soakworker.go runs
// them).

// soakProgress is a soak worker's cycles, in its progress reports.
type soakProgress struct {
	Drops     int64 `json:"drops"`     // streams the churn closed
	Cycles    int64 `json:"cycles"`    // streams the churn closed that reopened with Last-Event-ID
	Started   int64 `json:"started"`   // interviews opened, the first ones included
	Completed int64 `json:"completed"` // interviews walked through every change and ended
	Settled   bool  `json:"settled"`   // after "settle": every lane whole, no reopen pending
}

// latencySample caps the latencies a soak worker keeps: a uniform sample
// of them (reservoir), so that hours of changes take no more memory.
const latencySample = 20000

// soakResult is a soak worker's tally, the sum over its generations.
type soakResult struct {
	soakProgress
	ChangesMade int             `json:"changes_made"`
	Expected    int             `json:"expected"`
	Delivered   int             `json:"delivered"`
	Missed      int             `json:"missed"`
	Duplicates  int             `json:"duplicates"`
	OutOfOrder  int             `json:"out_of_order"`
	Unexpected  int             `json:"unexpected"`
	Latencies   []time.Duration `json:"latencies"`        // a uniform sample of at most latencySample
	LatencyN    int             `json:"latency_n"`        // latencies measured
	LatencyMax  time.Duration   `json:"latency_max"`      // the largest of all
	Misses      []string        `json:"misses,omitempty"` // the first few missed statuses, in words
}

// maxMisses caps the missed statuses a soak describes.
const maxMisses = 5

// add counts one generation's tally.
func (r *soakResult) add(t tally, changedAt []int64) {
	for _, at := range changedAt {
		if at != 0 {
			r.ChangesMade++
		}
	}
	r.Expected += t.Expected
	r.Delivered += t.Delivered
	r.Missed += t.Missed
	r.Duplicates += t.Duplicates
	r.OutOfOrder += t.OutOfOrder
	r.Unexpected += t.Unexpected
	for _, l := range t.Latencies {
		r.LatencyN++
		r.LatencyMax = max(r.LatencyMax, l)
		if len(r.Latencies) < latencySample {
			r.Latencies = append(r.Latencies, l)
		} else if j := rand.IntN(r.LatencyN); j < latencySample {
			r.Latencies[j] = l
		}
	}
}

// describeMisses says which expected statuses of an interview some of its
// streams never got, and how many missed each: all of them means the
// gateway never published it (with polling, a poll late by more than an
// interval sees two changes as one), some of them a delivery failure.
func describeMisses(id string, subs []subReport, changedAt []int64) []string {
	var out []string
	for k := range walk {
		if k > len(changedAt) || (k > 0 && changedAt[k-1] == 0) {
			continue
		}
		missed := 0
		for _, sr := range subs {
			if !slices.ContainsFunc(sr.Receipts, func(r receipt) bool { return r.Status == k }) {
				missed++
			}
		}
		if missed > 0 {
			out = append(out, fmt.Sprintf("interview %s: %s missed by %d of %d streams", id, walk[k], missed, len(subs)))
		}
	}
	return out
}

// count counts an error that belongs to no stream.
func (s *soaker) count(kind string) {
	s.w.errCount.Add(1)
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.errs[kind]++
}

// progress is the soak's counters.
func (s *soaker) progress() soakProgress {
	return soakProgress{
		Drops: s.drops.Load(), Cycles: s.cycles.Load(), Started: s.started.Load(), Completed: s.completed.Load(),
		Settled: s.quieted.Load(),
	}
}
