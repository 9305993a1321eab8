package sse

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterKeys caps the keys one rateLimits holds: at about 300 bytes
// each, some 3 MB at most, whatever a flood of new addresses sends.
const maxLimiterKeys = 10_000

// rateLimits holds one token-bucket limiter per key: a client address, an
// API token, a browser token. A key is forgotten once its bucket has
// refilled, since a new one would start full just the same; past maxKeys,
// the least recently seen key is forgotten first, which at worst gives it
// a fresh burst. So a flood of new keys (a botnet, or addresses a trusted
// proxy reports) costs bounded memory. The zero value is not usable; see
// newRateLimits.
type rateLimits struct {
	every   rate.Limit
	burst   int
	refill  time.Duration // the time an empty bucket takes to fill
	maxKeys int

	mu     sync.Mutex               // protects keys and recent
	keys   map[string]*list.Element // each holds a *limiter of recent
	recent list.List                // by seen, most recent first
}

type limiter struct {
	key  string
	lim  *rate.Limiter
	seen time.Time // when a token was last asked for
}

// newRateLimits allows burst requests at once and perMinute on average per
// key; perMinute <= 0 turns limiting off.
func newRateLimits(perMinute float64, burst int) *rateLimits {
	l := &rateLimits{every: rate.Inf, burst: max(burst, 1), maxKeys: maxLimiterKeys, keys: make(map[string]*list.Element)}
	if perMinute > 0 {
		l.every = rate.Limit(perMinute / 60)
		l.refill = time.Duration(math.Ceil(float64(l.burst)/float64(l.every))) * time.Second
	}
	return l
}

// wait reports how long key must wait before its next request is allowed;
// zero means go ahead (and the request is counted).
func (l *rateLimits) wait(key string) time.Duration {
	d, _ := l.take(key)
	return d
}

// take is wait, and when the request is allowed, a func that gives its
// token back (for a request another limit then refuses).
func (l *rateLimits) take(key string) (time.Duration, func()) {
	if l.every == rate.Inf {
		return 0, func() {}
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.touchLocked(key, now).lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, func() {}
	}
	return 0, r.Cancel
}

// blocked reports how long key must wait until it has a token to spend;
// zero when it has one now. It spends none, and adds no key: with spend,
// it counts failures only (see Handler.webhookFailures).
func (l *rateLimits) blocked(key string) time.Duration {
	if l.every == rate.Inf {
		return 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetIdleLocked(now)
	e, ok := l.keys[key]
	if !ok {
		return 0
	}
	if tokens := e.Value.(*limiter).lim.TokensAt(now); tokens < 1 {
		return time.Duration((1 - tokens) / float64(l.every) * float64(time.Second))
	}
	return 0
}

// spend takes a token of key's, if it has one left.
func (l *rateLimits) spend(key string) {
	if l.every == rate.Inf {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.touchLocked(key, now).lim.AllowN(now, 1)
}

// len is the number of keys held.
func (l *rateLimits) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// touchLocked returns key's limiter, made if need be, as seen now.
func (l *rateLimits) touchLocked(key string, now time.Time) *limiter {
	l.forgetIdleLocked(now)
	if e, ok := l.keys[key]; ok {
		c := e.Value.(*limiter)
		c.seen = now
		l.recent.MoveToFront(e)
		return c
	}
	if l.recent.Len() >= l.maxKeys {
		l.forgetLocked(l.recent.Back())
	}
	c := &limiter{key: key, lim: rate.NewLimiter(l.every, l.burst), seen: now}
	l.keys[key] = l.recent.PushFront(c)
	return c
}

// forgetIdleLocked forgets the keys whose buckets have refilled since
// they were last seen: the least recent, at the back.
func (l *rateLimits) forgetIdleLocked(now time.Time) {
	for e := l.recent.Back(); e != nil && now.Sub(e.Value.(*limiter).seen) > l.refill; e = l.recent.Back() {
		l.forgetLocked(e)
	}
}

func (l *rateLimits) forgetLocked(e *list.Element) {
	delete(l.keys, e.Value.(*limiter).key)
	l.recent.Remove(e)
}

// retrySeconds rounds a wait up to whole seconds for Retry-After.
func retrySeconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
