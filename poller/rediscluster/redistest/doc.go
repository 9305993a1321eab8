// Package redistest runs real Redis for tests, on free loopback ports, the
// way net/http/httptest runs servers:
//
//   - Start: one redis-server;
//   - StartSentinel: a master, its replica and three sentinels, with
//     KillMaster and WaitPromoted to time a failover;
//   - StartCluster: a Redis Cluster of three masters with a replica each,
//     with KillMaster and WaitFailover;
//   - StartTLS: a redis-server speaking only TLS, with its CA, a client
//     certificate and an unrelated CA written to files.
//
// Each needs Debian's redis-server (the cluster also redis-cli, from
// redis-tools) and skips the test without it, except under CI=true, where
// it fails it: CI must run every Redis test. Every process is killed when
// the test ends, or with the test process if it dies first.
//
// Where it sits: beside the poller's Cluster on Redis (rediscluster), in
// tests.
package redistest
