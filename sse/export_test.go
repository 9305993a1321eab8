package sse

// What the tests of package sse_test read of the inside.

// MaxLimiterKeys bounds the keys of every per-key rate limit.
const MaxLimiterKeys = maxLimiterKeys

// LimiterKeys reports how many keys the per-address limits hold: of
// /onboarding-url, and of wrong webhook credentials.
func (h *Handler) LimiterKeys() (sessions, webhookFailures int) {
	return h.limits.len(), h.webhookFailures.len()
}

// Waiting reports how many connections l tracks as waiting for a request:
// new ones, and idle ones kept alive after one.
func (l *Listener) Waiting() (fresh, idle int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting.fresh.Len(), l.waiting.idle.Len()
}
