package sse

import (
	"sync"
	"time"
)

// Bounds of the score cache: a score is a few KiB, so at most tens of MiB.
const (
	scoreTTL  = 30 * time.Minute
	maxScores = 10000
)

// scoreCache keeps each finished interview's score, so that many reads of
// one score (a page reloaded, a script hammering /fetch-score, the
// backend polling GET /v1/sessions) cost one upstream call. An entry holds
// for the status it was read at: a later status (a manual review decided
// after ONBOARDING_FINISHED) makes the upstream score it again, and the
// next read fetches it anew. Entries live for ttl, and at most max are
// kept.
type scoreCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex // protects entries
	entries map[string]scoreEntry
}

type scoreEntry struct {
	status string // the interview's status when the score was read
	score  Score
	at     time.Time
}

func newScoreCache(ttl time.Duration, max int) *scoreCache {
	return &scoreCache{ttl: ttl, max: max, entries: make(map[string]scoreEntry)}
}

// get returns the score kept for interviewID at status.
func (c *scoreCache) get(interviewID, status string) (Score, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[interviewID]
	if !ok || e.status != status || time.Since(e.at) > c.ttl {
		return Score{}, false
	}
	return e.score, true
}

// put keeps score for interviewID at status. When full, it first drops
// expired entries, then any.
func (c *scoreCache) put(interviewID, status string, score Score) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[interviewID]; !ok && len(c.entries) >= c.max {
		for id, e := range c.entries {
			if now.Sub(e.at) > c.ttl {
				delete(c.entries, id)
			}
		}
		for id := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, id)
		}
	}
	c.entries[interviewID] = scoreEntry{status: status, score: score, at: now}
}
