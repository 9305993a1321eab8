package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures a RedisQueue. The zero value of every field but
// Client selects its default.
type RedisConfig struct {
	// Client reaches the Redis every node shares. The caller owns it and
	// closes it after the queue. A call is cut at Timeout only when the
	// client lets a context's deadline cut its reads and writes
	// (ContextTimeoutEnabled, or ReadTimeout and WriteTimeout no longer
	// than Timeout). Required.
	Client redis.UniversalClient
	// Prefix starts every key, so that several gateways can share one
	// Redis. Zero means "pushgate".
	Prefix string
	// Visibility is how long a claim holds: a lane claimed by a node that
	// never settles it (the node died) is claimed again by another node
	// after it. It must exceed an attempt (the Relay's Timeout, and the
	// read of a verdict before a session.ended), and the clock skew
	// between nodes. Zero means 30s.
	Visibility time.Duration
	// MaxQueue caps the deliveries waiting (failed ones aside); past it
	// Add returns ErrFull and takes nothing. Zero means 100,000.
	MaxQueue int
	// Retention is how long an external id is kept after it was last
	// remembered. Zero means 24h.
	Retention time.Duration
	// MaxAge is how long a queued event id is remembered, so that the
	// same event, added by two nodes or by an Add made again after its
	// answer was lost, is queued once per target. Zero means 24h.
	MaxAge time.Duration
	// Timeout bounds each Redis call. Zero means 1s.
	Timeout time.Duration
}

func (c *RedisConfig) setDefaults() error {
	if c.Client == nil {
		return errors.New("relay: RedisConfig.Client is required")
	}
	if c.Prefix == "" {
		c.Prefix = "pushgate"
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 100_000
	}
	if c.MaxQueue < 0 {
		return errors.New("relay: RedisConfig.MaxQueue must not be negative")
	}
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&c.Visibility, 30 * time.Second}, {&c.Retention, 24 * time.Hour}, {&c.MaxAge, 24 * time.Hour}, {&c.Timeout, time.Second},
	} {
		if *d.field == 0 {
			*d.field = d.def
		}
		if *d.field < time.Millisecond {
			return errors.New("relay: RedisConfig durations must be at least 1ms")
		}
	}
	return nil
}

// RedisQueue is the Queue every node of a cluster shares, in Redis: each
// delivery is made by the one node that claimed its lane, and a claim its
// node never settled lapses after Visibility, when another node takes the
// lane over. It also keeps the interviews' external ids (ExternalIDs), so
// that every node's events carry them.
//
// Keys, all under one hash tag so that each script touches one slot (and
// runs on Redis Cluster too); times are unix ms, from the nodes' clocks:
//
//	<prefix>:{relay}:lane:<hash>    list per lane (hash of target and interview): entries, oldest first
//	<prefix>:{relay}:ready          sorted set: lane key, scored when its head is due (a claim: now+Visibility)
//	<prefix>:{relay}:waiting        sorted set: entry number, scored by its delivery's Created (Stats)
//	<prefix>:{relay}:seq            counter numbering the entries
//	<prefix>:{relay}:failed         list of failed entries, newest first, MaxFailed at most
//	<prefix>:{relay}:seen:<hash>:<id>   an event id queued in that lane, for MaxAge
//	<prefix>:{relay}:external:<interview>  its external id, for Retention
//
// An entry is "<number> <id>\n<Delivery as JSON>": the scripts read the
// number and the id, never the JSON, which only Go writes. A lane is in
// ready exactly while it holds entries; every change is one script, so
// this holds whichever nodes run them. Settles are fenced by the head's
// id: a node whose claim lapsed, and whose lane another node took over
// and settled, changes nothing. Next reads the lanes ready names, keys
// it is not passed: Redis Cluster allows it, as they share ready's slot.
//
// What Add took outlives a node, not Redis: run it with persistence
// (appendonly) and maxmemory-policy noeviction, so that no lane is
// evicted.
type RedisQueue struct {
	cfg  RedisConfig
	rdb  redis.UniversalClient
	base string // <prefix>:{relay}:

	ready, waiting, seq, failed string // keys
}

var (
	_ Queue       = (*RedisQueue)(nil)
	_ ExternalIDs = (*RedisQueue)(nil)
)

// NewRedisQueue returns the queue kept in cfg.Client's Redis. Redis need
// not be reachable yet: until it is, every call fails (the Relay keeps
// new events in memory meanwhile).
func NewRedisQueue(cfg RedisConfig) (*RedisQueue, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	base := cfg.Prefix + ":{relay}:"
	return &RedisQueue{
		cfg: cfg, rdb: cfg.Client, base: base,
		ready: base + "ready", waiting: base + "waiting", seq: base + "seq", failed: base + "failed",
	}, nil
}

// laneHash names d's lane in keys.
func laneHash(d Delivery) string {
	sum := sha256.Sum256([]byte(d.lane()))
	return hex.EncodeToString(sum[:16])
}

func (q *RedisQueue) laneKey(d Delivery) string { return q.base + "lane:" + laneHash(d) }

// op bounds one Redis call by Timeout.
func (q *RedisQueue) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, q.cfg.Timeout)
}

func (q *RedisQueue) Add(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	keys := make([]string, 0, 3+2*len(ds))
	keys = append(keys, q.ready, q.waiting, q.seq)
	args := make([]any, 0, 3+3*len(ds))
	args = append(args, q.cfg.MaxQueue, time.Now().UnixMilli(), q.cfg.MaxAge.Milliseconds())
	for _, d := range ds {
		body, err := encodeDelivery(d)
		if err != nil {
			return err
		}
		h := laneHash(d)
		keys = append(keys, q.base+"lane:"+h, q.base+"seen:"+h+":"+d.ID)
		args = append(args, d.ID, body, d.since().UnixMilli())
	}
	ctx, cancel := q.op(ctx)
	defer cancel()
	n, err := addScript.Run(ctx, q.rdb, keys, args...).Int64()
	if err != nil {
		return fmt.Errorf("relay: redis: adding %d deliveries: %w", len(ds), err)
	}
	if n < 0 {
		return ErrFull
	}
	return nil
}

func (q *RedisQueue) Next(ctx context.Context, now time.Time) (Delivery, bool, error) {
	ctx, cancel := q.op(ctx)
	defer cancel()
	e, err := nextScript.Run(ctx, q.rdb, []string{q.ready}, now.UnixMilli(), now.Add(q.cfg.Visibility).UnixMilli()).Text()
	if errors.Is(err, redis.Nil) {
		return Delivery{}, false, nil
	}
	if err != nil {
		return Delivery{}, false, fmt.Errorf("relay: redis: claiming a delivery: %w", err)
	}
	d, err := decodeEntry(e)
	if err != nil {
		// Unreadable (written by another version?): its lane stays
		// claimed, and comes back after each Visibility; others go on.
		return Delivery{}, false, err
	}
	return d, true, nil
}

func (q *RedisQueue) Done(ctx context.Context, d Delivery) error {
	return q.settle(ctx, "done", d, time.Time{})
}

func (q *RedisQueue) Retry(ctx context.Context, d Delivery, at time.Time) error {
	return q.settle(ctx, "retry", d, at)
}

func (q *RedisQueue) Fail(ctx context.Context, d Delivery) error {
	return q.settle(ctx, "fail", d, time.Time{})
}

// settle runs settleScript: how is done, retry or fail.
func (q *RedisQueue) settle(ctx context.Context, how string, d Delivery, at time.Time) error {
	body := ""
	if how != "done" {
		b, err := encodeDelivery(d)
		if err != nil {
			return err
		}
		body = b
	}
	ctx, cancel := q.op(ctx)
	defer cancel()
	keys := []string{q.ready, q.waiting, q.failed, q.laneKey(d)}
	err := settleScript.Run(ctx, q.rdb, keys, how, d.ID, time.Now().UnixMilli(), body, at.UnixMilli(), MaxFailed).Err()
	if err != nil {
		return fmt.Errorf("relay: redis: settling delivery %s (%s): %w", d.ID, how, err)
	}
	return nil
}

func (q *RedisQueue) Failed(ctx context.Context, limit int) ([]Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := q.op(ctx)
	defer cancel()
	es, err := q.rdb.LRange(ctx, q.failed, 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("relay: redis: reading the failed deliveries: %w", err)
	}
	out := make([]Delivery, 0, len(es))
	for _, e := range es {
		d, err := decodeEntry(e)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Redeliver finds the failed entries of id, then moves those still failed
// in one script: a concurrent Redeliver of the same id moves each once.
func (q *RedisQueue) Redeliver(ctx context.Context, id string) ([]Delivery, error) {
	ctx, cancel := q.op(ctx)
	defer cancel()
	es, err := findFailedScript.Run(ctx, q.rdb, []string{q.failed}, id).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("relay: redis: finding the failed deliveries of %s: %w", id, err)
	}
	if len(es) == 0 {
		return nil, nil
	}
	slices.Reverse(es) // oldest first, as they failed
	now := time.Now()
	keys := []string{q.ready, q.waiting, q.failed, q.seq}
	args := []any{now.UnixMilli()}
	ds := make([]Delivery, len(es))
	for i, e := range es {
		d, err := decodeEntry(e)
		if err != nil {
			return nil, err
		}
		d = d.redelivered(now)
		body, err := encodeDelivery(d)
		if err != nil {
			return nil, err
		}
		ds[i] = d
		keys = append(keys, q.laneKey(d))
		args = append(args, e, d.ID, body, d.since().UnixMilli())
	}
	moved, err := redeliverScript.Run(ctx, q.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("relay: redis: redelivering %s: %w", id, err)
	}
	var out []Delivery
	for i, m := range moved {
		if m == 1 {
			out = append(out, ds[i])
		}
	}
	return out, nil
}

func (q *RedisQueue) Stats(ctx context.Context) (Stats, error) {
	ctx, cancel := q.op(ctx)
	defer cancel()
	var depth *redis.IntCmd
	var oldest *redis.ZSliceCmd
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		depth = p.ZCard(ctx, q.waiting)
		oldest = p.ZRangeWithScores(ctx, q.waiting, 0, 0)
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("relay: redis: reading the queue's stats: %w", err)
	}
	s := Stats{Depth: int(depth.Val())}
	if z := oldest.Val(); len(z) > 0 {
		s.Oldest = time.UnixMilli(int64(z[0].Score))
	}
	return s, nil
}

// Close does nothing: the client is the caller's, and what the queue
// holds stays in Redis.
func (q *RedisQueue) Close() error { return nil }

func (q *RedisQueue) RememberExternalID(ctx context.Context, interviewID, externalID string) error {
	ctx, cancel := q.op(ctx)
	defer cancel()
	if err := q.rdb.Set(ctx, q.base+"external:"+interviewID, externalID, q.cfg.Retention).Err(); err != nil {
		return fmt.Errorf("relay: redis: remembering the external id of %s: %w", interviewID, err)
	}
	return nil
}

// ExternalID answers "" when the interview's external id is unknown, or
// was remembered longer than Retention ago.
func (q *RedisQueue) ExternalID(ctx context.Context, interviewID string) (string, error) {
	ctx, cancel := q.op(ctx)
	defer cancel()
	ext, err := q.rdb.Get(ctx, q.base+"external:"+interviewID).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("relay: redis: reading the external id of %s: %w", interviewID, err)
	}
	return ext, nil
}

// encodeDelivery is d as an entry holds it, after its number and id.
func encodeDelivery(d Delivery) (string, error) {
	if strings.Contains(d.ID, "\n") {
		return "", fmt.Errorf("relay: delivery id %q: want no newline", d.ID)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("relay: encoding delivery %s: %w", d.ID, err)
	}
	return string(b), nil
}

// decodeEntry reads the delivery of an entry: "<number> <id>\n<JSON>".
func decodeEntry(e string) (Delivery, error) {
	_, body, ok := strings.Cut(e, "\n")
	var d Delivery
	if !ok {
		return d, fmt.Errorf("relay: redis: an entry without a delivery: %.40q", e)
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return d, fmt.Errorf("relay: redis: entry %.40q: %w", e, err)
	}
	return d, nil
}
