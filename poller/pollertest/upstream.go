package pollertest

import (
	"context"
	"errors"
	"sync"

	"github.com/pushgate/pushgate/poller"
)

// Upstream is a Source that also knows the upstream's health and answers
// probes, with the rules of upstream.Client: a call that fails (SetErr),
// or that is held (Hold) until its deadline, makes it unhealthy; any
// answer makes it healthy; a call whose caller cancelled it changes
// nothing. Probes wait and fail as status calls do, and are counted apart
// (Probes). The zero value is ready; its methods are safe for concurrent
// use.
type Upstream struct {
	Source

	mu        sync.Mutex // protects unhealthy, probes, idleClose
	unhealthy error
	probes    int
	idleClose int
}

var (
	_ poller.Source        = (*Upstream)(nil)
	_ poller.HealthChecker = (*Upstream)(nil)
	_ poller.Prober        = (*Upstream)(nil)
)

// Status answers as Source.Status does, and records the outcome.
func (u *Upstream) Status(ctx context.Context, interviewID, sessionToken string) (string, error) {
	status, err := u.Source.Status(ctx, interviewID, sessionToken)
	u.record(err)
	return status, err
}

// Probe waits and fails as a status call would, and records the outcome.
func (u *Upstream) Probe(ctx context.Context) error {
	u.mu.Lock()
	u.probes++
	u.mu.Unlock()
	u.Source.mu.Lock()
	gate := u.Source.gate
	u.Source.mu.Unlock()
	err := u.answer(ctx, gate)
	u.record(err)
	return err
}

// record keeps the verdict of a call that ended with err.
func (u *Upstream) record(err error) {
	if errors.Is(err, context.Canceled) {
		return // the caller gave up: no verdict
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.unhealthy = err
}

// Healthy returns the error of the last call that reached a verdict, nil
// when it got an answer.
func (u *Upstream) Healthy() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.unhealthy
}

// CloseIdleConnections counts the times it was called.
func (u *Upstream) CloseIdleConnections() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.idleClose++
}

// Probes returns how many probes were made.
func (u *Upstream) Probes() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.probes
}

// IdleClosed returns how many times the idle connections were closed.
func (u *Upstream) IdleClosed() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.idleClose
}
