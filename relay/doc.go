// Package relay forwards to the integrator's backend what pushgate hears
// of its sessions: every webhook the upstream sends (byte for byte, so
// the backend's own webhook handler works unchanged behind pushgate), and
// pushgate's own events, session.status for each change and
// session.ended once per session. Each is signed as a Standard Webhook
// (standardwebhooks.com) and delivered at least once, in order per
// interview and target URL, from a queue that outlives the process:
//
//	sse (a webhook taken) ──Accepted──┐
//	poller (a change committed) ──Observed──┤
//	                                   ▼
//	               Queue.Add (memory, bbolt on disk, or Redis)
//	                                   │ Next: the head of a due lane (target, interview)
//	                                   ▼
//	     workers ──POST, signed, no redirects──▶ target URLs
//	                │ Done, Retry(at) with backoff, or Fail (kept for redelivery)
//
// A lane is the deliveries of one interview to one target: its head is
// delivered before anything behind it, so a later status never overtakes
// an earlier one. A lane whose head waits for a retry holds the rest of the
// lane back; other lanes go on.
//
// Files: relay.go holds the Relay and its Config; event.go the events and
// their bodies; enqueue.go how events become deliveries in the queue;
// sign.go the signatures; deliver.go the workers, one delivery attempt and
// what its answer means; queue.go the Queue interface and the lanes kept
// in memory (and in bbolt, bolt.go); redis.go and redis_scripts.go the
// queue a cluster shares; metrics.go the Prometheus collectors;
// relaytest a receiver that verifies signatures, for tests.
package relay
