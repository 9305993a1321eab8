package sse

import (
	"context"
	"strings"
	"sync"
)

// drain refuses the routes that need the pollers or the upstream once a
// shutdown begins, and counts the requests on them still in flight, so
// that the owner stops the pollers only after those requests are done (a
// session started just before the drain must still be registered).
// Streams are not counted: Drain ends them.
type drain struct {
	mu       sync.Mutex // protects every field below
	draining bool
	inflight int
	idle     chan struct{} // closed once draining with nothing in flight
}

// admit reports whether a request on path may be served, and counts it
// in flight until done is called.
func (d *drain) admit(path string) (done func(), ok bool) {
	if !drained(path) {
		return func() {}, true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining {
		return nil, false
	}
	if path == "/events" {
		return func() {}, true
	}
	d.inflight++
	return d.leave, true
}

func (d *drain) leave() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inflight--
	d.signalLocked()
}

// start refuses every later request on the drained routes.
func (d *drain) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.draining = true
	d.signalLocked()
}

func (d *drain) signalLocked() {
	if d.idle == nil {
		d.idle = make(chan struct{})
	}
	if d.draining && d.inflight == 0 {
		select {
		case <-d.idle:
		default:
			close(d.idle)
		}
	}
}

// wait blocks until the drain started and nothing admitted is in flight,
// or ctx ends.
func (d *drain) wait(ctx context.Context) error {
	d.mu.Lock()
	d.signalLocked()
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drained reports whether a draining node refuses the route: every route
// that needs the pollers or the upstream answers 503 draining with
// Retry-After, so that its client goes to another node, while the page,
// its assets, health and metrics are still served.
func drained(path string) bool {
	switch path {
	case "/onboarding-url", "/events", "/onboarding-status", "/fetch-score":
		return true
	}
	return strings.HasPrefix(path, apiPrefix) || strings.HasPrefix(path, "/webhooks/")
}
