package poller

import (
	"context"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// Cluster shares interviews between the gateway nodes that serve them, so
// that the whole cluster reads each interview from upstream once per
// interval. A nil Config.Cluster means this node is alone.
//
// The Manager keeps its own memory of every interview it serves (what
// Since, Last and Current answer from); Cluster holds the shared copy and
// the poll leases. Methods are called from the Manager's read, publish and
// receive goroutines, concurrently for different interviews, and must bound
// their own time. An error means the shared copy cannot be reached: the
// Manager then acts alone (reads upstream itself, numbers its own changes)
// until Changes announces, with a Resync, that it is back.
//
// It has six methods, not the usual three: leases, the shared state and the
// change feed are one adapter's view of the other nodes, and splitting them
// would only split that adapter.
type Cluster interface {
	// Lead reports whether this node is the one to read the interview from
	// upstream: 0 when it holds the interview's lease, or has just taken
	// it; otherwise at least how long another node keeps it. A held lease
	// is kept until Release.
	Lead(ctx context.Context, interviewID string) (time.Duration, error)
	// Release gives the interview's lease up if this node holds it, so
	// that another node with watchers takes over at once. It never blocks
	// for long and never fails: an unreleased lease expires by itself.
	Release(interviewID string)
	// Commit stores next as the interview's latest change and announces it
	// to the other nodes, if the stored latest change has a Seq of at
	// most prev (0: nothing stored). Otherwise it stores nothing and
	// returns the stored changes, oldest first, which the caller merges
	// before it decides again. Commits of one interview are atomic.
	Commit(ctx context.Context, prev uint64, next flow.Update, pushed bool) (stored []flow.Update, err error)
	// Load returns the shared state of an interview; its zero value when
	// nothing is stored.
	Load(ctx context.Context, interviewID string) (Shared, error)
	// Share stores the interview's upstream session token, so that any
	// node can read its status and score.
	Share(ctx context.Context, interviewID, sessionToken string) error
	// Changes delivers the changes other nodes commit, in commit order per
	// interview. The Manager reads it from one goroutine until Close; nil
	// delivers nothing.
	Changes() <-chan Change
}

// DegradedReporter is an optional interface of a Cluster: Degraded says
// why this node serves in a degraded mode ("" when it does not), e.g. it
// polls alone while the shared copy is out of reach. See Manager.Degraded.
type DegradedReporter interface {
	Degraded() string
}

// Shared is what the cluster knows of an interview.
type Shared struct {
	History  []flow.Update // the last changes, oldest first
	Token    string        // upstream session token; "" when none was shared
	PushedAt time.Time     // last change the upstream pushed; zero when none
}

// Change is a change another node committed, or a call to resync.
type Change struct {
	flow.Update
	Prev   uint64 // Seq of the change before it; 0 when none
	Pushed bool   // the upstream pushed it (its webhook)
	// Resync carries no update: changes may have been missed (the feed
	// reconnected, or the shared state was out of reach), so every
	// interview served is reloaded.
	Resync bool
}

// alone is the Cluster of a single node, which runs the same code as a
// node of a cluster: it always leads, stores every change at once (its
// shared copy is the Manager's own memory, so nothing is ever stored
// first by another), has nothing to load and hears no other node.
type alone struct{}

func (alone) Lead(context.Context, string) (time.Duration, error) { return 0, nil }
func (alone) Release(string)                                      {}
func (alone) Commit(context.Context, uint64, flow.Update, bool) ([]flow.Update, error) {
	return nil, nil
}
func (alone) Load(context.Context, string) (Shared, error) { return Shared{}, nil }
func (alone) Share(context.Context, string, string) error  { return nil }
func (alone) Changes() <-chan Change                       { return nil }

var _ Cluster = alone{}
