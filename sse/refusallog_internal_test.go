package sse

import (
	"testing"
	"time"
)

// TestRefusalLogAdmit: of each kind, the first in an interval is logged,
// and the next one logged says how many were not in between.
func TestRefusalLogAdmit(t *testing.T) {
	l := newRefusalLog(time.Minute)
	t0 := time.Now()
	if ok, n := l.admit("/webhooks/token 401", t0); !ok || n != 0 {
		t.Fatalf("the first: %v %d, want logged", ok, n)
	}
	for i := range 5 {
		if ok, _ := l.admit("/webhooks/token 401", t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("repeat %d within the minute logged", i)
		}
	}
	if ok, _ := l.admit("/webhooks/token 429", t0.Add(time.Second)); !ok {
		t.Fatal("another kind not logged")
	}
	if ok, n := l.admit("/webhooks/token 401", t0.Add(time.Minute)); !ok || n != 5 {
		t.Fatalf("a minute later: %v %d, want logged with the 5 before", ok, n)
	}
}
