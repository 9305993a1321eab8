package relay

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// ErrFull is returned by Queue.Add when the queue holds its most
// deliveries: the new ones are not taken.
var ErrFull = errors.New("relay: queue full")

// Queue keeps deliveries until they are delivered or failed, in lanes: the
// deliveries of one interview to one target, in the order they were added.
// Its methods are safe for concurrent use, from any node sharing it.
type Queue interface {
	// Add appends each delivery to the tail of its lane. ErrFull: none
	// was taken.
	Add(ctx context.Context, ds []Delivery) error
	// Next claims the head of a lane due at now: no other Next returns
	// that lane until the head is settled (Done, Retry, Fail) or, in a
	// queue that nodes share, until the claim lapses (a node that died).
	// ok is false when no lane is due.
	Next(ctx context.Context, now time.Time) (d Delivery, ok bool, err error)
	// Done removes d, delivered, from the head of its lane; Retry keeps it
	// there, as d now is, due again at at; Fail moves it to the failed.
	// Each does nothing when d no longer heads its lane (another node took
	// the lane over meanwhile).
	Done(ctx context.Context, d Delivery) error
	Retry(ctx context.Context, d Delivery, at time.Time) error
	Fail(ctx context.Context, d Delivery) error
	// Failed lists the failed deliveries, newest first, limit at most.
	Failed(ctx context.Context, limit int) ([]Delivery, error)
	// Redeliver puts the failed deliveries of the event id back at the
	// tail of their lanes, as new, and returns them.
	Redeliver(ctx context.Context, id string) ([]Delivery, error)
	// Stats says how many deliveries wait, and when the oldest was made.
	Stats(ctx context.Context) (Stats, error)
	// Close releases what the queue holds; what it keeps on disk or in
	// Redis stays.
	Close() error
}

// Stats is what a queue holds.
type Stats struct {
	Depth  int       // deliveries waiting (not failed)
	Oldest time.Time // when the oldest waiting one was made; zero when none
}

// MaxFailed is how many failed deliveries a queue keeps for redelivery;
// beyond it the oldest are dropped.
const MaxFailed = 10000

// localQueue is the Queue of a single node: lanes in memory, written
// through to a store on disk when there is one (bbolt: see bolt.go), so
// that a restart, or a kill -9, loses nothing that Add took.
type localQueue struct {
	max      int   // deliveries waiting, at most
	maxBytes int64 // their bodies' bytes (with an allowance each), at most
	store    store // nil: memory only

	mu     sync.Mutex // protects every field below
	lanes  map[string]*lane
	due    dueHeap // lanes that wait for their due time, not claimed
	failed []item  // oldest first
	depth  int
	bytes  int64  // what the waiting deliveries weigh (see weight)
	key    uint64 // the last storage key given
	gen    uint64 // numbers the places in due
}

type lane struct {
	items   []item
	claimed bool
	gen     uint64 // the lane's current place in due; older ones are stale
}

// item is a delivery and its storage key.
type item struct {
	key uint64
	d   Delivery
}

// weight is what a delivery is counted as against the queue's byte cap:
// its body, and an allowance for the rest (ids, URL, bookkeeping).
func weight(d Delivery) int64 { return int64(len(d.Body)) + 512 }

// newLocalQueue returns a queue of at most capacity deliveries and
// maxBytes of them (see weight), kept in st (nil: in memory only) and
// loaded from it, whatever its size.
func newLocalQueue(capacity int, maxBytes int64, st store) (*localQueue, error) {
	q := &localQueue{max: capacity, maxBytes: maxBytes, store: st, lanes: make(map[string]*lane)}
	if st == nil {
		return q, nil
	}
	queued, failed, err := st.load()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, it := range queued {
		q.appendLocked(it, now)
		q.key = max(q.key, it.key)
	}
	for _, it := range failed {
		q.failed = append(q.failed, it)
		q.key = max(q.key, it.key)
	}
	return q, nil
}

func (q *localQueue) Add(_ context.Context, ds []Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	var added int64
	for _, d := range ds {
		added += weight(d)
	}
	if q.depth+len(ds) > q.max || q.bytes+added > q.maxBytes {
		return ErrFull
	}
	return q.queueLocked(ds, nil)
}

// queueLocked gives each of ds a storage key and appends it to its lane,
// once written to the store with ops, in one transaction.
func (q *localQueue) queueLocked(ds []Delivery, ops []op) error {
	items := make([]item, len(ds))
	for i, d := range ds {
		q.key++
		items[i] = item{q.key, d}
		ops = append(ops, op{bucket: bucketQueued, key: q.key, d: &items[i].d})
	}
	if err := q.write(ops...); err != nil {
		return err
	}
	now := time.Now()
	for _, it := range items {
		q.appendLocked(it, now)
	}
	return nil
}

// appendLocked puts it at the tail of its lane, due at now if the lane
// was empty.
func (q *localQueue) appendLocked(it item, now time.Time) {
	l := q.lanes[it.d.lane()]
	if l == nil {
		l = &lane{}
		q.lanes[it.d.lane()] = l
	}
	l.items = append(l.items, it)
	q.depth++
	q.bytes += weight(it.d)
	if len(l.items) == 1 && !l.claimed {
		q.scheduleLocked(it.d.lane(), l, now)
	}
}

func (q *localQueue) scheduleLocked(name string, l *lane, at time.Time) {
	q.gen++ // never reused, even by a lane made again under the same name
	l.gen = q.gen
	heap.Push(&q.due, dueLane{at: at, lane: name, gen: l.gen})
}

func (q *localQueue) Next(_ context.Context, now time.Time) (Delivery, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.due.Len() > 0 && !q.due[0].at.After(now) {
		top := heap.Pop(&q.due).(dueLane)
		l := q.lanes[top.lane]
		if l == nil || l.claimed || l.gen != top.gen || len(l.items) == 0 {
			continue // a stale place
		}
		l.claimed = true
		return l.items[0].d, true, nil
	}
	return Delivery{}, false, nil
}

// head returns d's lane when d heads it.
func (q *localQueue) head(d Delivery) *lane {
	l := q.lanes[d.lane()]
	if l == nil || len(l.items) == 0 || l.items[0].d.ID != d.ID {
		return nil
	}
	return l
}

// releaseLocked gives up the claim on l, d's lane, whose settle could not
// be written: its head is tried again a second later, as it is on disk.
func (q *localQueue) releaseLocked(d Delivery, l *lane) {
	l.claimed = false
	q.scheduleLocked(d.lane(), l, time.Now().Add(time.Second))
}

// popLocked removes the head of l, d's lane, and schedules the next one.
func (q *localQueue) popLocked(d Delivery, l *lane) {
	q.bytes -= weight(l.items[0].d)
	l.items = l.items[1:]
	q.depth--
	l.claimed = false
	if len(l.items) == 0 {
		delete(q.lanes, d.lane())
		return
	}
	q.scheduleLocked(d.lane(), l, time.Now())
}

func (q *localQueue) Done(_ context.Context, d Delivery) error {
	return q.settle("done", d, time.Time{})
}

func (q *localQueue) Retry(_ context.Context, d Delivery, at time.Time) error {
	return q.settle("retry", d, at)
}

func (q *localQueue) Fail(_ context.Context, d Delivery) error {
	return q.settle("fail", d, time.Time{})
}

// settle settles d when it heads its lane: how is done, retry (due again
// at at) or fail.
func (q *localQueue) settle(how string, d Delivery, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.head(d)
	if l == nil {
		return nil
	}
	key := l.items[0].key
	var ops []op
	switch how {
	case "done":
		ops = []op{{bucket: bucketQueued, key: key}}
	case "retry":
		ops = []op{{bucket: bucketQueued, key: key, d: &d}}
	case "fail":
		ops = []op{{bucket: bucketQueued, key: key}, {bucket: bucketFailed, key: key, d: &d}}
		if len(q.failed) >= MaxFailed {
			ops = append(ops, op{bucket: bucketFailed, key: q.failed[0].key})
		}
	}
	if err := q.write(ops...); err != nil {
		q.releaseLocked(d, l)
		return err
	}
	switch how {
	case "retry":
		q.bytes += weight(d) - weight(l.items[0].d) // an end's body, made at its first attempt
		l.items[0].d = d
		l.claimed = false
		q.scheduleLocked(d.lane(), l, at)
		return nil
	case "fail":
		if len(q.failed) >= MaxFailed {
			q.failed = q.failed[1:]
		}
		q.failed = append(q.failed, item{key, d})
	}
	q.popLocked(d, l)
	return nil
}

func (q *localQueue) Failed(_ context.Context, limit int) ([]Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Delivery
	for i := len(q.failed) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, q.failed[i].d)
	}
	return out, nil
}

func (q *localQueue) Redeliver(_ context.Context, id string) ([]Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var again []Delivery
	var kept []item
	var ops []op
	now := time.Now()
	for _, it := range q.failed {
		if it.d.ID != id {
			kept = append(kept, it)
			continue
		}
		again = append(again, it.d.redelivered(now))
		ops = append(ops, op{bucket: bucketFailed, key: it.key})
	}
	if len(again) == 0 {
		return nil, nil
	}
	if err := q.queueLocked(again, ops); err != nil {
		return nil, err
	}
	q.failed = kept
	return again, nil
}

func (q *localQueue) Stats(context.Context) (Stats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Depth: q.depth}
	for _, l := range q.lanes {
		for _, it := range l.items {
			if since := it.d.since(); s.Oldest.IsZero() || since.Before(s.Oldest) {
				s.Oldest = since
			}
		}
	}
	return s, nil
}

func (q *localQueue) Close() error {
	if q.store == nil {
		return nil
	}
	return q.store.close()
}

// write applies ops to the store, if any, in one transaction.
func (q *localQueue) write(ops ...op) error {
	if q.store == nil {
		return nil
	}
	return q.store.apply(ops)
}

// store keeps a localQueue on disk. Keys grow with every delivery added,
// so the queued ones load in the order they were added.
type store interface {
	load() (queued, failed []item, err error)
	apply(ops []op) error // in one transaction
	close() error
}

// op writes d at key in bucket, or deletes key when d is nil.
type op struct {
	bucket string
	key    uint64
	d      *Delivery
}

const (
	bucketQueued = "queued"
	bucketFailed = "failed"
)

// dueLane is a lane's place in the due heap.
type dueLane struct {
	at   time.Time
	lane string
	gen  uint64
}

type dueHeap []dueLane

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueLane)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
