// Package flow is the status log of an onboarding interview, a leaf with
// no locks, no goroutines and no clock of its own (the caller passes the
// time; a node passes Now):
//
//   - the statuses the upstream reports, their order in the flow
//     (FlowOrder) and Update, one observed status;
//   - the event ids: Seq = stamp*1000 + view, the wall clock and what the
//     change shows (id.go, path.go), so any node tells what a client
//     holding an id has seen (Shows, Gate) and whether an id is one a
//     gateway issued (Plausible);
//   - Log, one interview's log on one node: what changes it (Next,
//     Append), what a client missed (Since) or gets of a change (Gate),
//     and how it meets the cluster's shared copy (Merge, Load, Follows,
//     Reconcile, Shared).
//
// poller owns one Log per interview and serializes the calls into it; sse
// knows statuses and ids through this package alone.
//
// Files: status.go the statuses and Update; id.go the event-id layout;
// path.go the client's path an id's view carries; log.go the Log and its
// changes; log_clients.go what it tells clients; clock.go the clock ids
// are stamped with (moved by clock_skewtest.go in clock-skew test builds).
package flow
