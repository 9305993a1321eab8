// Package rediscluster is the poller.Cluster of gateway nodes that share a
// Redis server: one node reads each interview from upstream, every node
// delivers its changes.
//
// Data flow:
//
//	Manager ──Lead(id)──────▶ lease  <prefix>:{id}:lease   SET NX PX, renewed every TTL/3
//	Manager ──Commit(change)─▶ state <prefix>:{id}:state   hash: seq, token (sealed), pushed
//	                          history <prefix>:{id}:history list of the last changes
//	                              │ same script, atomic: compare seq, store, PUBLISH
//	                              ▼
//	                  channel <prefix>:changes ──every node's listener──▶ Changes() ──▶ Manager
//
// A commit stores a change only if no newer one is stored, so a change is
// numbered once for the whole cluster whichever node, poll or webhook saw
// it. When Redis cannot be reached the Node reports itself degraded and
// answers every call with ErrUnavailable at once: each node then polls its
// own watched interviews, as a single node does. A health check notices
// Redis coming back and sends a Resync, after which nodes reload what they
// serve and take leases again.
//
// Session tokens are stored sealed (AES-256-GCM under a key derived from
// Config.Secret, bound to their interview), so that Redis holds no
// credential; one that does not open counts as absent.
//
// Files: connect.go (the Redis address: one server, Sentinel or a Redis
// Cluster, over TLS), node.go (Node, its lifecycle), lease.go, state.go
// (commit, load, share), seal.go (sealing tokens), feed.go (the channel
// and resyncs), health.go (outages and what ended them), metrics.go.
package rediscluster
