package poller

import (
	"sync"
	"sync/atomic"
	"time"
)

// savings tallies what the shared pollers save: the upstream status calls
// this node made, against the calls per-browser polling would have made,
// one per open stream per Interval. Both are exact at any moment: the
// watched time is integrated as streams come and go, with no sampling.
type savings struct {
	interval time.Duration
	calls    atomic.Uint64 // upstream status calls made (answered or not)
	avoided  atomic.Uint64 // the highest equivalent-calls less calls seen; a counter never goes down

	mu       sync.Mutex // protects the fields below
	watchers int        // open streams now, on every interview
	since    time.Time  // when watchers last changed
	watched  time.Duration
}

// watch records a stream opening (+1) or closing (-1).
func (s *savings) watch(delta int) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watchers > 0 {
		s.watched += time.Duration(s.watchers) * now.Sub(s.since)
	}
	s.watchers += delta
	s.since = now
}

// equivalent is the number of status calls per-browser polling at
// Interval would have made so far.
func (s *savings) equivalent() float64 {
	now := time.Now()
	s.mu.Lock()
	watched := s.watched
	if s.watchers > 0 {
		watched += time.Duration(s.watchers) * now.Sub(s.since)
	}
	s.mu.Unlock()
	return float64(watched) / float64(s.interval)
}

// saved is the number of status calls saved so far: the equivalent calls
// less those made, never less than it was before.
func (s *savings) saved() float64 {
	eq, made := uint64(s.equivalent()), s.calls.Load()
	for {
		prev := s.avoided.Load()
		if eq <= made || eq-made <= prev {
			return float64(prev)
		}
		if s.avoided.CompareAndSwap(prev, eq-made) {
			return float64(eq - made)
		}
	}
}
