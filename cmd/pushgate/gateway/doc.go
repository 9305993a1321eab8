// Package gateway builds a whole pushgate from one Config and runs it: the
// upstream client (or the built-in simulator), the Redis cluster, the
// poller, the broker and the HTTP surface, wired upstream -> poller -> sse.
// It is the only place that assembles them: cmd/pushgate turns flags and
// environment into a Config, and the tests that need a whole gateway build
// theirs here too. Process-wide settings (the open-file limit, the Redis
// client's logger) are main's.
//
// Where it sits: above the flow upstream -> poller -> sse -> page, which it
// wires: the upstream client goes to the poller as its Source and to sse
// (through a small adapter) as its Upstream; the broker is the poller's
// Publisher; the cluster, when configured, is the poller's Cluster.
package gateway
