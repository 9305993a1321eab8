package sse

import (
	"sync"
	"time"
)

// Bounds of the score cache: entries live scoreTTL, at most maxScores of
// them and maxScoreBytes of scores in all; a score over a tenth of that
// is not kept.
const (
	scoreTTL      = 30 * time.Minute
	maxScores     = 10000
	maxScoreBytes = 32 << 20
)

// scoreCache keeps each finished interview's score once it has a verdict,
// so that many reads of one score (a page reloaded, a script hammering
// /fetch-score, the backend polling GET /v1/sessions) cost one upstream
// call. A score without a verdict yet (none, or UNKNOWN, as just after
// ONBOARDING_FINISHED) is not kept: the next read asks again. An entry
// holds for the status it was read at: a later status (a manual review
// decided after ONBOARDING_FINISHED) makes the upstream score it again,
// and the next read fetches it anew. Entries live for ttl; at most max
// are kept, holding at most maxBytes of scores.
type scoreCache struct {
	ttl      time.Duration
	max      int
	maxBytes int

	mu      sync.Mutex // protects entries and bytes
	entries map[string]scoreEntry
	bytes   int // the sizes of the kept scores
}

type scoreEntry struct {
	status string // the interview's status when the score was read
	score  Score
	at     time.Time
}

func newScoreCache(ttl time.Duration, max, maxBytes int) *scoreCache {
	return &scoreCache{ttl: ttl, max: max, maxBytes: maxBytes, entries: make(map[string]scoreEntry)}
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

// put keeps score for interviewID at status, when it has a verdict and is
// not too large. When full, it first drops expired entries, then any.
func (c *scoreCache) put(interviewID, status string, score Score) {
	size := len(score.Raw)
	if score.Status == "" || score.Status == "UNKNOWN" || size > c.maxBytes/10 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(interviewID)
	if len(c.entries) >= c.max || c.bytes+size > c.maxBytes {
		for id, e := range c.entries {
			if now.Sub(e.at) > c.ttl {
				c.dropLocked(id)
			}
		}
		for id := range c.entries {
			if len(c.entries) < c.max && c.bytes+size <= c.maxBytes {
				break
			}
			c.dropLocked(id)
		}
	}
	c.entries[interviewID] = scoreEntry{status: status, score: score, at: now}
	c.bytes += size
}

// dropLocked forgets the entry of interviewID, if any.
func (c *scoreCache) dropLocked(interviewID string) {
	if e, ok := c.entries[interviewID]; ok {
		c.bytes -= len(e.score.Raw)
		delete(c.entries, interviewID)
	}
}
