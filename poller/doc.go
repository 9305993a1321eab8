// Package poller decides when to ask the upstream API for an interview's
// onboarding status and what changed. It sits between upstream and sse:
// upstream -> poller -> sse -> page.
//
// Each interview's statuses live in a flow.Log (package poller/flow, a
// leaf with no locks or goroutines): the statuses and their order, the
// event ids, what changes an interview and what each client has not seen.
// The Manager decides when to read and serializes each interview's calls
// into its log.
//
// The read path (read.go), from a caller to the upstream:
//
//	Current ──fresh?──▶ memory
//	   └──▶ sharedRead ──singleflight by id──▶ refresh ──fresh, backing off?──▶ skipLocked
//	                                              ├──▶ followLeader ──another node reads──▶ its status
//	                                              └──▶ callCapped (ceiling, semaphore) ──▶ callOnce ──▶ Source.Status
//	                                                     └──▶ answered ──a status──▶ change (the change path)
//
// The change path (change.go, sync.go), from a status to the subscribers:
//
//	answered, Push ──▶ change ──Log.Next──▶ Cluster.Commit ──▶ Log.Append ──▶ Publisher.Publish
//	feed (other nodes) ──onChange──▶ takePublishing (Log.Merge) ──▶ Publisher.Publish
//	       └─ changes missed: reload (Log.Load, shareAlonePublishing: Log.Reconcile) ──▶ Publisher.Publish
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
//	followLeader ──Lead(id)──▶ Cluster: only the lease holder reads upstream; the others follow
//	change ──Commit(prev, change)──▶ Cluster: stored on top of the last stored change, announced
//	Cluster.Changes() ──feed──▶ takePublishing ──▶ Publisher (this node's subscribers)
//
// Each node keeps its own memory of the interviews it serves, loaded from
// the cluster on first use and after every reloadAll. Without a Cluster
// the node is alone, and runs the same code: its Cluster (alone) leads
// every interview, stores every change at once and has nothing to load.
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
// interview.go the per-interview state, which owns its locks and its log;
// watch.go watchers, pollers and linger; read.go the read path, backoff
// and the caps on upstream calls; probe.go and recover.go the probe and
// recoveries; change.go the change path; sync.go and cluster.go the
// cluster; savings.go the upstream calls the shared pollers save;
// config.go the Config; metrics.go the Prometheus collectors.
package poller
