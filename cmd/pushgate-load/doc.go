// Command pushgate-load opens many concurrent sessions against pushgate and
// its simulator, drives status changes through the simulator's control API,
// and reports delivery, latency, upstream calls and memory.
//
//	pushgate-load -spawn -interviews 1000 -subscribers-per-interview 10 -json
//	pushgate-load -spawn -mode polling -interviews 1000 -subscribers-per-interview 10
//	pushgate-load -gateway http://10.0.0.1:8080,http://10.0.0.2:8080 -sim http://10.0.0.9:8090 -sim-control-token TOKEN -interviews 1000 -subscribers-per-interview 3
//	pushgate-load -spawn -duration 30m -churn 20 -interviews 300 -subscribers-per-interview 3
//
// A simulator beyond loopback, as the last one, answers its control API
// only with its control token (-sim-control-token here).
//
// The data flow of one run:
//
//	sessions ──▶ workers (this process, or -worker child processes)
//	             │ one goroutine per connection: SSE stream or polling browser
//	driver ──POST /sim/interviews/{id}/status──▶ simulator ──▶ gateway ──▶ workers
//	parent: receipts − change times ⇒ latency, missed, duplicates; /sim/stats ⇒ upstream calls
//
// With -churn the run is a soak (soak.go): for -duration, streams close and
// reopen with Last-Event-ID and interviews finish and are replaced by new
// sessions, the workers driving their own changes (soakworker.go); the
// gateway's RSS and goroutines are read from its /metrics at the start,
// every minute and after the churn, and goroutines that do not come back
// fail the run.
//
// With several -gateway URLs (the nodes of a cluster), session i is created
// at node i mod N and subscriber k of interview i streams from node
// (i+k) mod N, so an interview's subscribers sit on different nodes.
//
// Where it sits: it plays the browsers and drives the simulator, from
// outside the flow upstream -> poller -> sse -> page that it measures.
package main
