package sse

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestScoreCacheKeepsVerdictsWithinBounds: only scores with a verdict are
// kept, each for its status, within the count and byte bounds.
func TestScoreCacheKeepsVerdictsWithinBounds(t *testing.T) {
	score := func(status string, size int) Score {
		return Score{Status: status, Raw: json.RawMessage(`{"pad":"` + strings.Repeat("x", size) + `"}`)}
	}
	c := newScoreCache(time.Hour, 3, 1000)
	c.put("a", "ONBOARDING_FINISHED", score("", 10))
	c.put("b", "ONBOARDING_FINISHED", score("UNKNOWN", 10))
	if _, ok := c.get("a", "ONBOARDING_FINISHED"); ok {
		t.Fatal("a score without a verdict was kept")
	}
	if _, ok := c.get("b", "ONBOARDING_FINISHED"); ok {
		t.Fatal("an UNKNOWN verdict was kept")
	}
	c.put("c", "ONBOARDING_FINISHED", score("OK", 10))
	if _, ok := c.get("c", "ONBOARDING_FINISHED"); !ok {
		t.Fatal("a verdict was not kept")
	}
	if _, ok := c.get("c", "MANUAL_REVIEW_REJECTED"); ok {
		t.Fatal("a score read at another status was served")
	}
	c.put("big", "ONBOARDING_FINISHED", score("OK", 200)) // over a tenth of the bytes
	if _, ok := c.get("big", "ONBOARDING_FINISHED"); ok {
		t.Fatal("a score over the size bound was kept")
	}
	for i := range 20 {
		c.put(string(rune('d'+i)), "ONBOARDING_FINISHED", score("OK", 80))
		if len(c.entries) > 3 || c.bytes > 1000 {
			t.Fatalf("%d entries, %d bytes: over the bounds", len(c.entries), c.bytes)
		}
	}
	total := 0
	for _, e := range c.entries {
		total += len(e.score.Raw)
	}
	if total != c.bytes {
		t.Fatalf("bytes %d, entries hold %d", c.bytes, total)
	}
}
