package main

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// changeSenders is how many control calls may be in flight at once: enough
// for thousands of changes a second, few enough to not load the box.
const changeSenders = 32

// minChangeGap keeps two changes of one interview apart. The gateway polls
// every interval plus up to 10% jitter, and only pushes what a poll sees:
// two changes within one interval would hide the first, which is not a
// delivery failure. Two intervals leave room for a late poll.
func minChangeGap(interval time.Duration) time.Duration { return 2 * interval }

// plannedChange is change k (1-based: it sets walk[k]) of an interview, at
// an offset from the start of the driving phase.
type plannedChange struct {
	at        time.Duration
	interview int
	k         int
}

// planChanges spreads k changes of each of n interviews over d: change j
// lands in the j-th slot of d/k, at a random point that keeps it at least
// one gap after change j-1, so load is even and arrival order is mixed.
func planChanges(n, k int, d, interval time.Duration, rnd *rand.Rand) []plannedChange {
	if k == 0 {
		return nil
	}
	slot, gap := d/time.Duration(k), minChangeGap(interval)
	plan := make([]plannedChange, 0, n*k)
	for i := range n {
		for j := 1; j <= k; j++ {
			jitter := time.Duration(rnd.Int64N(int64(slot-gap) + 1))
			plan = append(plan, plannedChange{at: time.Duration(j-1)*slot + jitter, interview: i, k: j})
		}
	}
	sort.Slice(plan, func(a, b int) bool { return plan[a].at < plan[b].at })
	return plan
}

// setter changes the upstream status of an interview.
type setter func(ctx context.Context, id, status string) error

// drive makes the planned changes on time and answers when each was sent:
// changedAt[i][k-1] in Unix nanoseconds, 0 for a change that failed (its
// error goes to fail) or was never made because ctx ended.
func drive(ctx context.Context, plan []plannedChange, ids []string, k int, set setter, fail func(error)) [][]int64 {
	changedAt := make([][]int64, len(ids))
	for i := range changedAt {
		changedAt[i] = make([]int64, k)
	}
	due := make(chan plannedChange)
	var wg sync.WaitGroup
	for range changeSenders {
		wg.Go(func() {
			for c := range due {
				sent := time.Now().UnixNano()
				if err := set(ctx, ids[c.interview], walk[c.k]); err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					continue
				}
				changedAt[c.interview][c.k-1] = sent // each element has one writer
			}
		})
	}
	dispatch(ctx, plan, due)
	close(due)
	wg.Wait()
	return changedAt
}

// dispatch hands each change to a sender at its time.
func dispatch(ctx context.Context, plan []plannedChange, due chan<- plannedChange) {
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for _, c := range plan {
		if d := time.Until(start.Add(c.at)); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		select {
		case <-ctx.Done():
			return
		case due <- c:
		}
	}
}
