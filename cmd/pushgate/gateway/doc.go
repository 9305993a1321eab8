// Package gateway builds a whole pushgate from one Config and runs it: the
// upstream client (or the built-in simulator), the Redis cluster, the
// poller, the broker and the HTTP surface, wired upstream -> poller -> sse.
// cmd/pushgate turns flags and environment into a Config, and the tests of
// the command and of the page build their gateways here too; sse's tests,
// below this package, wire theirs from the same parts. Process-wide
// settings (the open-file limit, the Redis client's logger) are main's.
//
// Where it sits: above the flow upstream -> poller -> sse -> page, which it
// wires: the upstream client goes to the poller as its Source and to sse
// (through internal/upstreamsse, under the shared call ceiling) as its
// Upstream; the broker is the poller's Publisher; the cluster, when
// configured, is the poller's Cluster.
package gateway
