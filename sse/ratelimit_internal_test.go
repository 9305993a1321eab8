package sse

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitsBounded: a key is forgotten once its bucket has refilled,
// and past maxKeys the least recently seen goes first.
func TestRateLimitsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newRateLimits(60, 2) // one a second, two at once: full 2 s after the last
		l.maxKeys = 3
		for _, k := range []string{"a", "b", "c", "a", "d"} {
			l.wait(k)
		}
		for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
			if _, held := l.keys[k]; held != want {
				t.Errorf("key %s held: %v, want %v (b, the least recent, forgotten for d)", k, held, want)
			}
		}
		if d := l.wait("a"); d <= 0 {
			t.Fatalf("a's third request at once: wait %v, want a wait (burst 2)", d)
		}
		time.Sleep(2*time.Second + time.Millisecond)
		l.wait("e")
		if n := l.len(); n != 1 {
			t.Fatalf("%d keys held 2 s later, want only e: the others' buckets are full again", n)
		}
		if d := l.wait("a"); d != 0 {
			t.Fatalf("a, forgotten: wait %v, want a full bucket", d)
		}
	})
}

// TestRateLimitsCountFailures: blocked spends nothing and adds no key;
// only spend counts, and an address is blocked once its burst is spent,
// until a token refills.
func TestRateLimitsCountFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newRateLimits(6, 2) // one every 10 s
		for range 100 {
			if d := l.blocked("x"); d != 0 {
				t.Fatalf("blocked before any failure: %v", d)
			}
		}
		if n := l.len(); n != 0 {
			t.Fatalf("%d keys after checks alone, want none", n)
		}
		l.spend("x")
		l.spend("x")
		if d := l.blocked("x"); d != 10*time.Second {
			t.Fatalf("after 2 failures (the burst): blocked %v, want 10s", d)
		}
		if d := l.blocked("y"); d != 0 {
			t.Fatalf("another key blocked %v", d)
		}
		time.Sleep(10 * time.Second)
		if d := l.blocked("x"); d != 0 {
			t.Fatalf("10 s later: blocked %v, want a token back", d)
		}
	})
}

// TestRateLimitsGiveBack: a token taken and given back is there again.
func TestRateLimitsGiveBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newRateLimits(1, 1)
		d, giveBack := l.take("")
		if d != 0 {
			t.Fatalf("first take: wait %v", d)
		}
		giveBack()
		if d, _ := l.take(""); d != 0 {
			t.Fatalf("after giving the token back: wait %v, want none", d)
		}
		if d, _ := l.take(""); d <= 0 {
			t.Fatal("a second token at once, want a wait")
		}
	})
}
