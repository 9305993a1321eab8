package relay

import (
	"context"
	"testing"
	"time"
)

// TestLocalQueueStatsOldest: the oldest waiting delivery is found in a
// lane whose items were not added in the order they were made (adds that
// raced, a redelivery ahead of a late add), as in one that was.
func TestLocalQueueStatsOldest(t *testing.T) {
	ctx := context.Background()
	q, err := newLocalQueue(100, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id, interview string, created int) Delivery {
		return Delivery{ID: id, Target: "https://backend.example/", InterviewID: interview, Created: t0.Add(time.Duration(created) * time.Second)}
	}
	oldest := func(want int) {
		t.Helper()
		s, err := q.Stats(ctx)
		if err != nil || s.Oldest.Sub(t0) != time.Duration(want)*time.Second {
			t.Fatalf("oldest %v, %v; want t0+%ds", s.Oldest, err, want)
		}
	}
	settle := func(id string) {
		t.Helper()
		d, ok, err := q.Next(ctx, time.Now())
		if err != nil || !ok || d.ID != id {
			t.Fatalf("next %s, %v, %v; want %s", d.ID, ok, err, id)
		}
		if err := q.Done(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Add(ctx, []Delivery{mk("a1", "a", 5)}); err != nil {
		t.Fatal(err)
	}
	a1, _, _ := q.Next(ctx, time.Now()) // lane a stays claimed
	if err := q.Add(ctx, []Delivery{mk("b1", "b", 3), mk("b2", "b", 1), mk("b3", "b", 4)}); err != nil {
		t.Fatal(err)
	}
	oldest(1) // b2, behind b1
	settle("b1")
	oldest(1)
	settle("b2")
	oldest(4)
	settle("b3")
	oldest(5)
	if err := q.Done(ctx, a1); err != nil {
		t.Fatal(err)
	}
	if s, _ := q.Stats(ctx); s.Depth != 0 || !s.Oldest.IsZero() {
		t.Fatalf("stats %+v, want none", s)
	}
}
