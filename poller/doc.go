// Package poller decides when to ask the upstream API for an interview's
// onboarding status and what changed. It sits between upstream and sse:
// upstream -> poller -> sse -> page.
//
// Data flow:
//
//	sse ──Watch(id)──▶ Manager ──one goroutine per watched interview──┐
//	sse ──Current(id)─▶   │                                           │
//	                      ▼                                           ▼
//	           singleflight.Group keyed by id ──ceiling, semaphore──▶ Source.Status (upstream)
//	                      │
//	                      ▼ only when the status differs from the last one
//	                 Publisher.Publish(Update{id, status, seq})  (sse's Broker)
//
// Every upstream status read for an interview, whether a poller tick, a
// snapshot for a new subscriber or a request from a polling client, goes
// through the same singleflight key and is skipped while the last read is
// younger than one interval, so any number of tabs costs at most one upstream
// call per interval. A poller starts with the first watcher, stops Linger
// after the last one leaves, and stops for good once the flow finished.
//
// Push applies a status the upstream pushed (its webhook) through the same
// numbering and dedupe, so a change seen by a push and by a poll is
// published once; while pushes arrive, the interview's poller slows to
// PushInterval. Statuses are taken in the order they arrive, except one
// the interview has moved past: one it showed before, or one behind the
// current status in the flow (see FlowOrder). So neither a webhook the
// upstream retries late nor a read that lags behind a webhook moves a
// flow back. StatusExpired ends the session.
//
// Several gateway nodes share the work through a Cluster (Config.Cluster;
// poller/rediscluster is the one on Redis):
//
//	fetch ──Lead(id)──▶ Cluster: only the lease holder reads upstream; the others follow
//	apply ──Commit(prev, change)──▶ Cluster: stored on top of the last stored change, announced
//	Cluster.Changes() ──receive──▶ merge ──▶ Publisher (this node's subscribers)
//
// Each node keeps its own memory of the interviews it serves, loaded from
// the cluster on first use and after every resync. Without a Cluster the
// node is alone: it leads every interview and its memory is the only copy.
//
// A Source that is a Prober is probed, one cheap call per ProbeInterval
// for the whole node, while the upstream fails or the node reads nothing,
// so Ready follows the upstream without traffic. A probe that sees the
// upstream back after an outage cuts the calls in flight (each is made
// again at once), lifts the backoffs and wakes every poller:
//
//	prober ──Probe──▶ Source ──▶ probed: back? ──▶ recover: close idle conns, cut calls, lift backoffs, wake pollers
//
// Files: manager.go holds the Manager and the map of interviews;
// interview.go the per-interview state, which owns its locks; watch.go
// watchers, pollers and linger; read.go reads, backoff and the caps on
// upstream calls; probe.go and recover.go the probe and recoveries;
// change.go applying and publishing changes; sync.go and cluster.go the
// cluster; flow.go statuses, their order and Update, and path.go the
// client's path an event id's view carries; clock.go the clock ids are
// stamped with (moved by clock_skewtest.go in clock-skew test builds);
// savings.go the upstream calls the shared pollers save; config.go the
// Config; metrics.go the Prometheus collectors.
package poller
