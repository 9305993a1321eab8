package sse

import (
	"context"

	"github.com/pushgate/pushgate/poller/flow"
)

// Statuses is what the handler needs of the node's interview statuses:
// poller's Manager, which reads them from upstream through one shared
// poller per interview and keeps each interview's flow.Log. sse knows the
// statuses and their event ids through poller/flow alone.
type Statuses interface {
	memory
	// Current returns the interview's status, from memory while it is
	// fresh, else read upstream; flow.ErrClosed once the node shuts down.
	Current(ctx context.Context, interviewID string) (flow.Update, error)
	// Watch keeps the interview's poller running until unwatch is called.
	Watch(interviewID string) (unwatch func())
	// Push applies a status the upstream pushed; flow.ErrUnknownInterview
	// when no node knows the interview.
	Push(interviewID, status string) (u flow.Update, changed bool, err error)
	// Register records the upstream session token of a session started
	// here; SessionToken returns it, on any node of a cluster.
	Register(interviewID, sessionToken string)
	SessionToken(interviewID string) string
	// Ready says why the upstream cannot serve now (nil: it can);
	// Degraded why the node serves in a degraded mode ("": it does not).
	Ready() error
	Degraded() string
}
