// Package redistest runs a real redis-server for tests, on a free loopback
// port, the way net/http/httptest runs servers.
//
// Start skips the test when redis-server is not installed, except under
// CI=true, where it fails it: CI must run every cluster test.
//
// Where it sits: beside the poller's Cluster on Redis (rediscluster), in
// tests.
package redistest
