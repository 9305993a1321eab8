package relay_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
	"github.com/pushgate/pushgate/relay"
)

// newRedisQueue is one node's queue on srv, on a client of its own, with
// cfg's settings (a Visibility of a minute unless set: no claim lapses
// unless the test means it to).
func newRedisQueue(t testing.TB, srv *redistest.Server, cfg relay.RedisConfig) *relay.RedisQueue {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, DisableIdentity: true, MaxRetries: 1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	t.Cleanup(func() { client.Close() })
	cfg.Client = client
	if cfg.Visibility == 0 {
		cfg.Visibility = time.Minute
	}
	q, err := relay.NewRedisQueue(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// delivery is an upstream webhook with id to target, in interview's lane.
func delivery(id, target, interview string) relay.Delivery {
	return relay.Delivery{ID: id, Target: target, InterviewID: interview, Kind: relay.KindUpstream, Body: []byte(`{"n":"` + id + `"}`), Created: time.Now()}
}

const (
	targetA = "https://a.example/hook"
	targetB = "https://b.example/hook"
)

func add(t testing.TB, q relay.Queue, ds ...relay.Delivery) {
	t.Helper()
	if err := q.Add(t.Context(), ds); err != nil {
		t.Fatalf("add %v: %v", ids(ds), err)
	}
}

// next claims a delivery due at now, and fails the test when none is.
func next(t testing.TB, q relay.Queue, now time.Time) relay.Delivery {
	t.Helper()
	d, ok, err := q.Next(t.Context(), now)
	if err != nil || !ok {
		t.Fatalf("next: %v, %v; want a delivery", ok, err)
	}
	return d
}

// none fails the test when a delivery is due at now.
func none(t testing.TB, q relay.Queue, now time.Time) {
	t.Helper()
	if d, ok, err := q.Next(t.Context(), now); err != nil || ok {
		t.Fatalf("next: %s %v, %v; want none due", d.ID, ok, err)
	}
}

func settle(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ids(ds []relay.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func depth(t testing.TB, q relay.Queue) int {
	t.Helper()
	s, err := q.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s.Depth
}

// TestRedisQueueKeepsLaneOrder: a lane gives its deliveries in the order
// they were added, across Adds, one at a time: a claimed lane gives
// nothing more until its head is settled.
func TestRedisQueueKeepsLaneOrder(t *testing.T) {
	ctx := t.Context()
	q := newRedisQueue(t, redistest.Start(t), relay.RedisConfig{})
	add(t, q, delivery("m1", targetA, "iv"), delivery("m2", targetA, "iv"))
	add(t, q, delivery("m3", targetA, "iv"))
	var got []string
	for range 3 {
		d := next(t, q, time.Now())
		none(t, q, time.Now())
		got = append(got, d.ID)
		settle(t, q.Done(ctx, d))
	}
	none(t, q, time.Now())
	if want := []string{"m1", "m2", "m3"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if n := depth(t, q); n != 0 {
		t.Fatalf("depth %d after every delivery was done", n)
	}
}

// TestRedisQueueInterleavesLanes: lanes (an interview, a target) go on
// side by side, each in its own order; the same interview to two targets
// is two lanes.
func TestRedisQueueInterleavesLanes(t *testing.T) {
	ctx := t.Context()
	q := newRedisQueue(t, redistest.Start(t), relay.RedisConfig{})
	add(t, q, delivery("a1", targetA, "a"), delivery("b1", targetA, "b"), delivery("a2", targetA, "a"),
		delivery("c1", targetB, "a"), delivery("b2", targetA, "b"))
	var heads []relay.Delivery
	for range 3 {
		heads = append(heads, next(t, q, time.Now()))
	}
	none(t, q, time.Now()) // a2 and b2 wait behind claimed heads
	if got := ids(heads); !sameSet(got, []string{"a1", "b1", "c1"}) {
		t.Fatalf("first claims %v, want the head of each lane", got)
	}
	byID := map[string]relay.Delivery{}
	for _, d := range heads {
		byID[d.ID] = d
	}
	settle(t, q.Done(ctx, byID["b1"]))
	if d := next(t, q, time.Now()); d.ID != "b2" {
		t.Fatalf("after b1: %s, want b2", d.ID)
	}
	settle(t, q.Done(ctx, byID["a1"]))
	if d := next(t, q, time.Now()); d.ID != "a2" {
		t.Fatalf("after a1: %s, want a2", d.ID)
	}
	none(t, q, time.Now())
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestRedisQueueTakesOverALapsedClaim: a node claims a head and dies; no
// node gets the lane while the claim holds, another gets the same head,
// same id, once it lapsed; and the dead node's settles, should it come
// back, change nothing once the lane was settled by the other.
func TestRedisQueueTakesOverALapsedClaim(t *testing.T) {
	ctx := t.Context()
	const visibility = 200 * time.Millisecond
	srv := redistest.Start(t)
	dead := newRedisQueue(t, srv, relay.RedisConfig{Visibility: visibility})
	live := newRedisQueue(t, srv, relay.RedisConfig{Visibility: visibility})
	add(t, dead, delivery("m1", targetA, "iv"), delivery("m2", targetA, "iv"))
	claimed := time.Now()
	stale := next(t, dead, claimed)
	none(t, live, claimed)
	none(t, live, claimed.Add(visibility-time.Millisecond))

	tookOver := claimed.Add(visibility) // the claim lapsed
	taken := next(t, live, tookOver)
	if taken.ID != stale.ID || string(taken.Body) != string(stale.Body) {
		t.Fatalf("took over %s %s, want the dead node's %s", taken.ID, taken.Body, stale.ID)
	}
	none(t, dead, tookOver) // the takeover holds the lane in turn
	settle(t, live.Done(ctx, taken))

	stale.Attempts, stale.LastError, stale.FailedAt = 1, "HTTP 400", time.Now()
	settle(t, dead.Fail(ctx, stale))
	settle(t, dead.Retry(ctx, stale, time.Now().Add(time.Hour)))
	settle(t, dead.Done(ctx, stale))
	if failed, err := live.Failed(ctx, 10); err != nil || len(failed) != 0 {
		t.Fatalf("failed %v, %v; want none: the stale Fail came after the lane moved on", ids(failed), err)
	}
	if d := next(t, live, time.Now()); d.ID != "m2" || d.Attempts != 0 {
		t.Fatalf("next %s (attempts %d), want m2 due now and untouched", d.ID, d.Attempts)
	}
	if n := depth(t, live); n != 1 {
		t.Fatalf("depth %d, want 1 (m2): the stale Done took nothing", n)
	}
}

// TestRedisQueueRetryKeepsTheHead: a retried head keeps its place, as
// retried (attempts, last error), due later; its lane waits, the others
// go on.
func TestRedisQueueRetryKeepsTheHead(t *testing.T) {
	ctx := t.Context()
	q := newRedisQueue(t, redistest.Start(t), relay.RedisConfig{})
	add(t, q, delivery("m1", targetA, "iv"), delivery("m2", targetA, "iv"))
	d := next(t, q, time.Now())
	d.Attempts, d.LastError = 1, "HTTP 503"
	at := time.Now().Add(time.Hour)
	settle(t, q.Retry(ctx, d, at))
	add(t, q, delivery("other", targetA, "iv2"))
	o := next(t, q, time.Now())
	if o.ID != "other" {
		t.Fatalf("next %s, want the other lane's", o.ID)
	}
	settle(t, q.Done(ctx, o))
	none(t, q, at.Add(-time.Millisecond))
	again := next(t, q, at)
	if again.ID != "m1" || again.Attempts != 1 || again.LastError != "HTTP 503" {
		t.Fatalf("at its due time: %+v; want m1 as retried", again)
	}
	settle(t, q.Done(ctx, again))
	if d := next(t, q, time.Now()); d.ID != "m2" {
		t.Fatalf("after m1: %s, want m2", d.ID)
	}
}

// TestRedisQueueFailsAndRedelivers: a failed head leaves its lane for the
// failed list (newest first) and the next one is due at once; Redeliver
// puts every failed delivery of the id (one per target) back at the tail
// of its lane, as new, once.
func TestRedisQueueFailsAndRedelivers(t *testing.T) {
	ctx := t.Context()
	q := newRedisQueue(t, redistest.Start(t), relay.RedisConfig{})
	add(t, q, delivery("x", targetA, "iv"), delivery("x", targetB, "iv"), delivery("m2", targetA, "iv"), delivery("y", targetA, "iv2"))
	for range 3 { // the heads of the three lanes
		d := next(t, q, time.Now())
		d.Attempts, d.LastError, d.FailedAt = 2, "HTTP 400", time.Now()
		settle(t, q.Fail(ctx, d))
	}
	failed, err := q.Failed(ctx, 10)
	if err != nil || len(failed) != 3 {
		t.Fatalf("failed %v, %v; want 3", ids(failed), err)
	}
	for _, d := range failed {
		if d.Attempts != 2 || d.LastError != "HTTP 400" || d.FailedAt.IsZero() {
			t.Fatalf("failed %+v: want it as it failed", d)
		}
	}
	if newest, _ := q.Failed(ctx, 1); len(newest) != 1 || newest[0].ID != failed[0].ID || newest[0].Target != failed[0].Target {
		t.Fatalf("Failed(1) = %v, want the newest, %s", ids(newest), failed[0].ID)
	}
	m2 := next(t, q, time.Now()) // its lane's head failed: due now
	if m2.ID != "m2" {
		t.Fatalf("next %s, want m2", m2.ID)
	}
	if n := depth(t, q); n != 1 {
		t.Fatalf("depth %d, want 1: failed deliveries do not wait", n)
	}

	again, err := q.Redeliver(ctx, "x")
	if err != nil || len(again) != 2 {
		t.Fatalf("redeliver x: %v, %v; want both targets", ids(again), err)
	}
	for _, d := range again {
		if d.ID != "x" || d.Attempts != 0 || d.LastError == "" || !d.FailedAt.IsZero() || d.Since.Before(d.Created) {
			t.Fatalf("redelivered %+v, want it retried afresh from now, its last error kept", d)
		}
	}
	if left, _ := q.Failed(ctx, 10); len(left) != 1 || left[0].ID != "y" {
		t.Fatalf("still failed %v, want y", ids(left))
	}
	if d := next(t, q, time.Now()); d.ID != "x" || d.Target != targetB || d.Attempts != 0 {
		t.Fatalf("next %s to %s, want x to %s (its lane was empty)", d.ID, d.Target, targetB)
	}
	none(t, q, time.Now()) // x to targetA waits behind m2
	settle(t, q.Done(ctx, m2))
	if d := next(t, q, time.Now()); d.ID != "x" || d.Target != targetA {
		t.Fatalf("after m2: %s to %s, want x to %s", d.ID, d.Target, targetA)
	}
	for _, id := range []string{"x", "nope"} {
		if again, err := q.Redeliver(ctx, id); err != nil || len(again) != 0 {
			t.Fatalf("redeliver %s: %v, %v; want nothing", id, ids(again), err)
		}
	}
}

// TestRedisQueueKeepsMaxFailed: past MaxFailed, the oldest failed
// deliveries are dropped.
func TestRedisQueueKeepsMaxFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("fails more than MaxFailed deliveries")
	}
	ctx := t.Context()
	q := newRedisQueue(t, redistest.Start(t), relay.RedisConfig{})
	ds := make([]relay.Delivery, relay.MaxFailed+1)
	for i := range ds {
		ds[i] = delivery("m"+strconv.Itoa(i), targetA, strconv.Itoa(i))
	}
	add(t, q, ds...)
	settle(t, q.Fail(ctx, ds[0]))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := 1 + w; i < len(ds); i += 8 {
				if err := q.Fail(ctx, ds[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	failed, err := q.Failed(ctx, 2*relay.MaxFailed)
	if err != nil || len(failed) != relay.MaxFailed {
		t.Fatalf("%d failed kept, %v; want MaxFailed", len(failed), err)
	}
	if slices.Contains(ids(failed), "m0") {
		t.Fatal("the oldest failed delivery is still kept")
	}
}

// TestRedisQueueFull: past MaxQueue, Add takes nothing of the call; room
// made by a delivery done is taken again. Failed deliveries do not count.
func TestRedisQueueFull(t *testing.T) {
	ctx := t.Context()
	q := newRedisQueue(t, redistest.Start(t), relay.RedisConfig{MaxQueue: 3})
	add(t, q, delivery("m1", targetA, "a"), delivery("m2", targetA, "b"))
	if err := q.Add(ctx, []relay.Delivery{delivery("m3", targetA, "c"), delivery("m4", targetA, "d")}); !errors.Is(err, relay.ErrFull) {
		t.Fatalf("add past the cap: %v, want ErrFull", err)
	}
	if n := depth(t, q); n != 2 {
		t.Fatalf("depth %d after a full Add, want 2: it took nothing", n)
	}
	add(t, q, delivery("m3", targetA, "c"))
	if err := q.Add(ctx, []relay.Delivery{delivery("m4", targetA, "d")}); !errors.Is(err, relay.ErrFull) {
		t.Fatalf("add at the cap: %v, want ErrFull", err)
	}
	settle(t, q.Fail(ctx, next(t, q, time.Now())))
	add(t, q, delivery("m4", targetA, "d"))
	if n := depth(t, q); n != 3 {
		t.Fatalf("depth %d, want 3", n)
	}
}

// TestRedisQueueStats: the depth counts the deliveries waiting, claimed
// or not; Oldest is the Created of the oldest one waiting, to the
// millisecond.
func TestRedisQueueStats(t *testing.T) {
	ctx := t.Context()
	q := newRedisQueue(t, redistest.Start(t), relay.RedisConfig{})
	if s, err := q.Stats(ctx); err != nil || s.Depth != 0 || !s.Oldest.IsZero() {
		t.Fatalf("empty: %+v, %v", s, err)
	}
	young, old := delivery("young", targetA, "a"), delivery("old", targetA, "b")
	old.Created = time.Now().Add(-time.Hour)
	add(t, q, young, old, delivery("m3", targetA, "a"))
	s, err := q.Stats(ctx)
	if err != nil || s.Depth != 3 || s.Oldest.UnixMilli() != old.Created.UnixMilli() {
		t.Fatalf("stats %+v, %v; want 3, oldest %v", s, err, old.Created)
	}
	for d := next(t, q, time.Now()); d.ID != "old"; d = next(t, q, time.Now()) {
		settle(t, q.Retry(ctx, d, time.Now().Add(time.Hour)))
	}
	if s, _ := q.Stats(ctx); s.Depth != 3 {
		t.Fatalf("depth %d with every lane claimed or retried, want 3", s.Depth)
	}
	settle(t, q.Done(ctx, relay.Delivery{ID: "old", Target: targetA, InterviewID: "b"}))
	if s, _ := q.Stats(ctx); s.Depth != 2 || s.Oldest.UnixMilli() != young.Created.UnixMilli() {
		t.Fatalf("stats %+v, want 2, oldest %v", s, young.Created)
	}
}

// TestRedisQueueQueuesAnEventOnce: session.status and session.ended
// have ids every node makes alike; two nodes adding one (each acting
// alone for a while) queue it once per target. Upstream webhooks, whose
// ids are random, are never taken for one another.
func TestRedisQueueQueuesAnEventOnce(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	a, b := newRedisQueue(t, srv, relay.RedisConfig{}), newRedisQueue(t, srv, relay.RedisConfig{})
	status := delivery("msg_status", targetA, "iv")
	status.Kind = relay.KindStatus
	ended := delivery("msg_ended", targetA, "iv")
	ended.Kind = relay.KindEnded
	toB := status
	toB.Target = targetB
	add(t, a, status, ended)
	add(t, b, status, toB, ended)
	add(t, a, delivery("msg_up", targetA, "iv2"))
	add(t, a, delivery("msg_up", targetA, "iv2")) // the same Add again, its answer lost
	if n := depth(t, a); n != 4 {
		t.Fatalf("depth %d, want 4: status and ended to A once, status to B, the upstream webhook once", n)
	}
	var got []string
	for {
		d, ok, err := b.Next(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, d.ID+">"+strings.TrimPrefix(d.Target, "https://"))
		settle(t, b.Done(ctx, d))
	}
	want := []string{"msg_status>a.example/hook", "msg_ended>a.example/hook", "msg_status>b.example/hook", "msg_up>a.example/hook"}
	if !sameSet(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

// TestRedisQueueExternalIDs: an external id one node remembers is read by
// another; it is forgotten after Retention.
func TestRedisQueueExternalIDs(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	a, b := newRedisQueue(t, srv, relay.RedisConfig{}), newRedisQueue(t, srv, relay.RedisConfig{})
	if err := a.RememberExternalID(ctx, "iv", "cust-42"); err != nil {
		t.Fatal(err)
	}
	if ext, err := b.ExternalID(ctx, "iv"); err != nil || ext != "cust-42" {
		t.Fatalf("external id %q, %v; want cust-42", ext, err)
	}
	if ext, err := b.ExternalID(ctx, "unknown"); err != nil || ext != "" {
		t.Fatalf("unknown interview: %q, %v; want none", ext, err)
	}

	const retention = 200 * time.Millisecond
	short := newRedisQueue(t, srv, relay.RedisConfig{Retention: retention})
	if err := short.RememberExternalID(ctx, "iv2", "cust-43"); err != nil {
		t.Fatal(err)
	}
	ttl, err := srv.Do("PTTL", "pushgate:{relay}:external:iv2")
	if ms, _ := strconv.Atoi(ttl); err != nil || ms == -1 || ms > int(retention.Milliseconds()) {
		t.Fatalf("PTTL %s, %v; want at most Retention", ttl, err) // -2: gone already
	}
	time.Sleep(retention + 100*time.Millisecond)
	if ext, err := b.ExternalID(ctx, "iv2"); err != nil || ext != "" {
		t.Fatalf("after Retention: %q, %v; want it forgotten", ext, err)
	}
}

// TestRedisQueueOneNodePerDelivery: nodes claiming at once each get
// their own deliveries: every one is made once, and each lane in order.
func TestRedisQueueOneNodePerDelivery(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	nodes := []*relay.RedisQueue{newRedisQueue(t, srv, relay.RedisConfig{}), newRedisQueue(t, srv, relay.RedisConfig{})}
	const lanes, perLane = 8, 10
	for i := range perLane {
		var ds []relay.Delivery
		for l := range lanes {
			ds = append(ds, delivery(fmt.Sprintf("l%d-%02d", l, i), targetA, strconv.Itoa(l)))
		}
		add(t, nodes[i%2], ds...)
	}
	var mu sync.Mutex // protects made
	made := map[string][]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 6 {
		wg.Go(func() {
			q := nodes[w%2]
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
				d, ok, err := q.Next(ctx, time.Now())
				if err != nil {
					errs <- err
					return
				}
				if !ok {
					if n, _ := q.Stats(ctx); n.Depth == 0 {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				made[d.InterviewID] = append(made[d.InterviewID], d.ID)
				mu.Unlock()
				if err := q.Done(ctx, d); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for l := range lanes {
		got := made[strconv.Itoa(l)]
		if len(got) != perLane || !slices.IsSorted(got) {
			t.Fatalf("lane %d made %v: want each of %d once, in order", l, got, perLane)
		}
		if c := slices.Compact(slices.Clone(got)); len(c) != perLane {
			t.Fatalf("lane %d made %v: a delivery made twice", l, got)
		}
	}
}

// TestRedisQueueOutOfReach: a Redis that cannot be reached is an error,
// not an empty or a full queue, so the Relay keeps new events in memory.
func TestRedisQueueOutOfReach(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	q := newRedisQueue(t, srv, relay.RedisConfig{Timeout: 200 * time.Millisecond})
	srv.Stop()
	if err := q.Add(ctx, []relay.Delivery{delivery("m1", targetA, "iv")}); err == nil || errors.Is(err, relay.ErrFull) {
		t.Fatalf("add: %v, want an error other than ErrFull", err)
	}
	if _, ok, err := q.Next(ctx, time.Now()); err == nil || ok {
		t.Fatalf("next: %v, %v; want an error", ok, err)
	}
	if _, err := q.Stats(ctx); err == nil {
		t.Fatal("stats: no error")
	}
}

// TestRedisQueueConfig: a client is required; durations below a
// millisecond (Redis counts in them) are refused.
func TestRedisQueueConfig(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for _, cfg := range []relay.RedisConfig{
		{},
		{Client: client, Visibility: -time.Second},
		{Client: client, Timeout: time.Microsecond},
		{Client: client, MaxQueue: -1},
	} {
		if _, err := relay.NewRedisQueue(cfg); err == nil {
			t.Fatalf("NewRedisQueue(%+v): no error", cfg)
		}
	}
	if _, err := relay.NewRedisQueue(relay.RedisConfig{Client: client}); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
