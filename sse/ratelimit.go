package sse

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimits holds one token-bucket limiter per client address. Idle
// limiters are forgotten, so the map stays as large as the set of recent
// clients. The zero value is not usable; see newRateLimits.
type rateLimits struct {
	every     rate.Limit
	burst     int
	idleAfter time.Duration

	mu      sync.Mutex // protects clients, sweptAt
	clients map[string]*limiter
	sweptAt time.Time
}

type limiter struct {
	*rate.Limiter
	seen time.Time
}

// newRateLimits allows burst requests at once and perMinute on average per
// client; perMinute <= 0 turns limiting off.
func newRateLimits(perMinute float64, burst int) *rateLimits {
	every := rate.Inf
	if perMinute > 0 {
		every = rate.Limit(perMinute / 60)
	}
	return &rateLimits{every: every, burst: max(burst, 1), clients: make(map[string]*limiter), idleAfter: 10 * time.Minute}
}

// wait reports how long the client must wait before its next request is
// allowed; zero means go ahead (and the request is counted).
func (l *rateLimits) wait(client string) time.Duration {
	if l.every == rate.Inf {
		return 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweptAt) > time.Minute {
		l.sweptAt = now
		for k, c := range l.clients {
			if now.Sub(c.seen) > l.idleAfter {
				delete(l.clients, k)
			}
		}
	}
	c := l.clients[client]
	if c == nil {
		c = &limiter{Limiter: rate.NewLimiter(l.every, l.burst)}
		l.clients[client] = c
	}
	c.seen = now
	r := c.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// retrySeconds rounds a wait up to whole seconds for Retry-After.
func retrySeconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
