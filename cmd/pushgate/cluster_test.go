package main

// Cluster tests: pushgate processes, a pushgate-sim process as their shared
// upstream, and a real redis-server. They skip when redis-server is missing,
// except under CI=true.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
	"github.com/pushgate/pushgate/sse/ssetest"
)

const (
	clusterInterval = time.Second
	clusterLeaseTTL = 3 * time.Second
)

// TestClusterPollsEachInterviewOnce: three nodes, 1,000 interviews (300
// in the quick suite), a subscriber of each interview on every node. The
// upstream sees about one status call per interview per interval for the
// whole cluster, and every subscriber gets every change once, in order,
// with the same ids on all nodes.
func TestClusterPollsEachInterviewOnce(t *testing.T) {
	t.Parallel()
	interviews := testenv.Size(300, 1000)
	c, sessions := startCluster(t, interviews)
	subs := c.subscribeEverywhere(sessions)
	waitAll(t, "every subscriber has the current status", subs, 1)

	steps := []string{"ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", "GOVERNMENT_VALIDATION_FINISHED"}
	time.Sleep(2 * clusterInterval)
	began, before := time.Now(), c.statusCalls(sessions)
	for k, status := range steps {
		c.setAll(sessions, status)
		waitAll(t, status+" reached every subscriber", subs, k+2)
		time.Sleep(3 * clusterInterval)
	}
	elapsed, calls := time.Since(began), c.statusCalls(sessions)-before
	per := float64(calls) / float64(interviews) / (float64(elapsed) / float64(clusterInterval))
	t.Logf("3 nodes, %d interviews, %d subscribers: %d status calls in %v = %.3f per interview per interval",
		interviews, len(subs), calls, elapsed.Round(time.Millisecond), per)
	if per > 1.05 {
		t.Fatalf("the cluster made %.3f status calls per interview per interval, want at most 1.05", per)
	}
	c.checkLeases(t, interviews)
	c.setAll(sessions, flow.StatusFinished)
	want := append(append([]string{"UNKNOWN"}, steps...), flow.StatusFinished)
	checkFlows(t, subs, want, nil)
}

// TestClusterSurvivesOwnerKill kills, with SIGKILL, the node polling 100
// interviews. Polling resumes on another node within the lease TTL, a change
// made meanwhile is not lost, and the owner's clients, reconnecting to
// other nodes with Last-Event-ID, miss nothing and see nothing twice.
func TestClusterSurvivesOwnerKill(t *testing.T) {
	const interviews = 100
	c, sessions := startCluster(t, interviews)
	var subs []*subscriber
	for _, s := range sessions {
		subs = append(subs, c.subscribe(s, 0)) // node 0 watches first: its pollers take the leases
	}
	waitAll(t, "node 0's subscribers have the current status", subs, 1)
	time.Sleep(2 * clusterInterval)
	for _, s := range sessions {
		for n := 1; n < len(c.nodes); n++ {
			subs = append(subs, c.subscribe(s, n))
		}
	}
	waitAll(t, "every subscriber has the current status", subs, 1)
	owner := c.nodes[0]
	for _, s := range sessions {
		if holder := c.leaseHolder(s.InterviewID); holder != owner.pid() {
			t.Fatalf("interview %s is polled by pid %d, want node 0 (pid %d)", s.InterviewID, holder, owner.pid())
		}
	}
	c.setAll(sessions, "ID_VALIDATION_FINISHED")
	waitAll(t, "the first change reached every subscriber", subs, 2)

	before := c.callsByInterview(sessions)
	owner.kill()
	killed := time.Now()
	c.setAll(sessions, "FACE_VALIDATION_FINISHED") // made while nobody polls
	resumed := map[string]time.Duration{}
	for len(resumed) < interviews && time.Since(killed) < 3*clusterLeaseTTL {
		now := c.callsByInterview(sessions)
		for id, n := range now {
			if _, ok := resumed[id]; !ok && n > before[id] {
				resumed[id] = time.Since(killed)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(resumed) < interviews {
		t.Fatalf("polling resumed for %d of %d interviews within %v of the kill", len(resumed), interviews, 3*clusterLeaseTTL)
	}
	worst := slices.Max(slices.Collect(maps.Values(resumed)))
	t.Logf("owner killed: polling of all %d interviews resumed on other nodes within %v (lease TTL %v, interval %v)",
		interviews, worst.Round(time.Millisecond), clusterLeaseTTL, clusterInterval)
	// The lease lapses at most one TTL after its last renewal, so within
	// the TTL of the kill; the other nodes look at it then, plus their
	// jitter (at most 10% of the interval), and read at once. The margin
	// covers that, the sampling step and a loaded machine.
	if worst > clusterLeaseTTL+500*time.Millisecond {
		t.Fatalf("polling resumed %v after the kill, want within the lease TTL %v", worst, clusterLeaseTTL)
	}
	waitAll(t, "the change made during the failover reached every subscriber", subs, 3)
	c.setAll(sessions, flow.StatusFinished)
	checkFlows(t, subs, []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", flow.StatusFinished}, nil)
	moved := 0
	for _, s := range subs {
		if s.reconnects() > 0 {
			moved++
		}
	}
	if moved < interviews {
		t.Fatalf("%d subscribers reconnected, want at least the killed node's %d", moved, interviews)
	}
}

// TestClusterLateWebhooksAndExpiry: the upstream's webhooks reach any node
// of three (through a load balancer), and it retries them late, while its
// status reads lag behind them. No node ever shows a status an interview
// moved past: not on a stream, not on /onboarding-status; a new status
// reaches every subscriber, ONBOARDING_FINISHED sent twice gives one
// event, all with the same ids on every node. EXPIRED ends every stream
// with "expired", whether a read or a webhook brings it, and every node
// then answers 410.
func TestClusterLateWebhooksAndExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: not with -short")
	}
	t.Parallel() // orders and counts
	c := newCluster(t, 3, "-webhook-secret", clusterWebhookSecret, "-push-interval", clusterInterval.String())
	sessions := c.sessions(30)
	lagging, expiredByRead, expiredByHook := sessions[:10], sessions[10:20], sessions[20:]
	subs := c.subscribeEverywhere(sessions)
	waitAll(t, "every subscriber has the current status", subs, 1)
	of := func(group []session) []*subscriber {
		first := slices.Index(sessions, group[0]) * len(c.nodes)
		return subs[first : first+len(group)*len(c.nodes)]
	}

	c.hook(lagging, "ID_VALIDATION_FINISHED", 0)
	c.hook(lagging, "POST_PROCESSING_FINISHED", 1)
	c.hook(lagging, "FACE_VALIDATION_FINISHED", 2)
	c.setAll(lagging, "POST_PROCESSING_FINISHED") // the upstream's reads lag behind its webhooks
	before := c.callsByInterview(lagging)
	c.setAll(expiredByRead, "EXPIRED")  // a flow timeout ran out: reads bring it
	c.hook(expiredByHook, "EXPIRED", 2) // ... and the webhook
	// Safety polls read the lagging status: two reads each, so that the
	// first read since setAll has been answered and taken in.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		now, read := c.callsByInterview(lagging), 0
		for id, n := range now {
			if n >= before[id]+2 {
				read++
			}
		}
		if read == len(lagging) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("safety polls read %d of %d lagging interviews twice within 20s", read, len(lagging))
		}
	}
	c.hook(lagging, "ID_VALIDATION_FINISHED", 2) // the upstream's late retries
	c.hook(lagging, "POST_PROCESSING_FINISHED", 1)
	c.hook(lagging, "UNKNOWN", 0)
	for _, s := range lagging {
		for _, n := range c.nodes {
			resp := authGet(t, n.base+"/onboarding-status", s.InterviewID, s.Token)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"FACE_VALIDATION_FINISHED"`) {
				t.Fatalf("%s/onboarding-status: %d %s, want FACE_VALIDATION_FINISHED", n.base, resp.StatusCode, body)
			}
		}
	}
	c.hook(lagging, "GOVERNMENT_VALIDATION_FINISHED", 1)
	c.hook(lagging, flow.StatusFinished, 2)
	c.hook(lagging, flow.StatusFinished, 0)
	checkFlows(t, of(lagging), []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED", "FACE_VALIDATION_FINISHED", "GOVERNMENT_VALIDATION_FINISHED", flow.StatusFinished}, nil)
	checkFlows(t, of(expiredByRead), []string{"UNKNOWN", "end:expired"}, nil)
	checkFlows(t, of(expiredByHook), []string{"UNKNOWN", "end:expired"}, nil)
	for _, s := range append(slices.Clone(expiredByRead), expiredByHook...) {
		for _, n := range c.nodes {
			resp := authGet(t, n.base+"/fetch-score", s.InterviewID, s.Token)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), `"session_expired"`) {
				t.Fatalf("%s/fetch-score of an expired session: %d %s, want 410 session_expired", n.base, resp.StatusCode, body)
			}
		}
	}
}

const clusterWebhookSecret = "a-webhook-secret-for-the-cluster"

// hook sends the upstream's webhook of status for every session to the
// node with index n.
func (c *cluster) hook(sessions []session, status string, n int) {
	c.t.Helper()
	for _, s := range sessions {
		req, _ := http.NewRequest(http.MethodPost, c.nodes[n].base+"/webhooks/onboarding-status",
			strings.NewReader(`{"interviewId":"`+s.InterviewID+`","onboardingStatus":"`+status+`","externalId":12345}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+clusterWebhookSecret)
		resp, err := c.client.Do(req)
		if err != nil {
			c.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"success":true`) {
			c.t.Fatalf("webhook %s to node %d: %s %s, want 200 so the upstream stops retrying", status, n, resp.Status, body)
		}
	}
}

// TestClusterRidesOutARedisOutage stops Redis for 10 s (5 s in the quick
// suite): every node keeps delivering by polling alone and says so on
// /readyz; once Redis is back (empty, as after a restart without
// persistence), the cluster returns to one status call per interview per
// interval.
func TestClusterRidesOutARedisOutage(t *testing.T) {
	t.Parallel()
	const interviews = 200
	outage := testenv.Size(5*time.Second, 10*time.Second)
	c, sessions := startCluster(t, interviews)
	subs := c.subscribeEverywhere(sessions)
	waitAll(t, "every subscriber has the current status", subs, 1)
	steady := c.callRate(sessions, 2*clusterInterval) // logged, for the record
	t.Logf("before the outage: %.3f status calls per interview per interval", steady)

	c.checkLeases(t, interviews)
	c.redis.Stop()
	c.redisStopped = time.Now()
	for _, n := range c.nodes {
		n.waitReady(t, func(body string) bool { return strings.Contains(body, `"status":"degraded"`) })
		if v := n.metric(t, "pushgate_cluster_degraded"); v != 1 {
			t.Fatalf("%s: pushgate_cluster_degraded %v during the outage, want 1", n.base, v)
		}
	}
	c.setAll(sessions, "ID_VALIDATION_FINISHED")
	waitAll(t, "a change made during the outage reached every subscriber", subs, 2)
	alone := c.callRate(sessions, 2*clusterInterval) // logged, for the record
	t.Logf("during the outage: %.3f status calls per interview per interval (each node polls alone)", alone)
	time.Sleep(time.Until(c.redisStopped.Add(outage)))

	c.redis.Restart()
	for _, n := range c.nodes {
		n.waitReady(t, func(body string) bool { return strings.Contains(body, `"status":"ready"`) })
	}
	time.Sleep(2 * clusterInterval) // leases taken again
	c.checkLeases(t, interviews)
	back := c.callRate(sessions, 6*clusterInterval)
	t.Logf("after Redis came back: %.3f status calls per interview per interval", back)
	if back > 1.05 {
		t.Fatalf("after the outage the cluster makes %.3f status calls per interview per interval, want at most 1.05", back)
	}
	c.setAll(sessions, "FACE_VALIDATION_FINISHED")
	waitAll(t, "a change after the outage reached every subscriber", subs, 3)
	c.setAll(sessions, flow.StatusFinished)
	// During the outage each node numbered the change it saw alone, so
	// that id differs between nodes; the changes after it are numbered
	// above it again, once, for the whole cluster.
	checkFlows(t, subs, []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", flow.StatusFinished}, []int{1})
}

// cluster is a redis-server, a pushgate-sim and n pushgate nodes.
type cluster struct {
	t            *testing.T
	redis        *redistest.Server
	redisStopped time.Time
	sim          string // base URL
	nodes        []*node
	client       *http.Client
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup // subscribers
}

// newCluster starts the cluster's processes; extra flags go to every node
// after the defaults, so they may override them.
func newCluster(t *testing.T, nodes int, extra ...string) *cluster {
	t.Helper()
	var r *redistest.Server // none when extra names a Redis of its own
	if !slices.Contains(extra, "-redis-url") {
		r = redistest.Start(t)
	}
	bin := buildCommands(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{
		t: t, redis: r, ctx: ctx, cancel: cancel,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	t.Cleanup(func() {
		c.cancel()
		c.wg.Wait()
		c.client.CloseIdleConnections()
	})
	simAddr := testenv.FreeAddr(t)
	c.sim = "http://" + simAddr
	startProcess(t, filepath.Join(bin, "pushgate-sim"), c.sim+"/sim/stats", "-addr", simAddr, "-api-key", "cluster-key")
	for range nodes {
		addr := testenv.FreeAddr(t)
		n := &node{base: "http://" + addr, client: c.client, bin: filepath.Join(bin, "pushgate")}
		n.args = append([]string{
			"-addr", addr, "-upstream", c.sim, "-api-key", "cluster-key", "-flow-id", "cluster-flow", "-flow-origin", c.sim,
			"-secret", "a-cluster-secret-of-32-bytes-len", "-lease-ttl", clusterLeaseTTL.String(),
			"-poll-interval", clusterInterval.String(), "-sessions-per-minute", "-1", "-max-sessions-per-minute", "-1", "-max-conns-per-client", "-1",
			"-max-streams-per-client", "-1", "-max-streams-per-interview", "-1", "-log-level", "warn"}, extra...)
		if r != nil {
			n.args = append(n.args, "-redis-url", r.URL())
		}
		n.restart(t)
		c.nodes = append(c.nodes, n)
	}
	return c
}

// startCluster starts three nodes and the given number of sessions.
func startCluster(t *testing.T, interviews int) (*cluster, []session) {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster test: not with -short")
	}
	c := newCluster(t, 3)
	return c, c.sessions(interviews)
}

// subscribeEverywhere opens a stream of every session on every node.
func (c *cluster) subscribeEverywhere(sessions []session) []*subscriber {
	subs := make([]*subscriber, 0, len(c.nodes)*len(sessions))
	for i, s := range sessions {
		for n := range c.nodes {
			subs = append(subs, c.subscribe(s, (i+n)%len(c.nodes)))
		}
	}
	return subs
}

type session struct{ InterviewID, Token string }

// sessions starts n onboarding sessions, spread over the nodes.
func (c *cluster) sessions(n int) []session {
	c.t.Helper()
	out := make([]session, n)
	for i := range out {
		resp, err := c.client.Get(c.nodes[i%len(c.nodes)].base + "/onboarding-url")
		if err != nil {
			c.t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&out[i])
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || out[i].Token == "" {
			c.t.Fatalf("/onboarding-url: %s, %v", resp.Status, err)
		}
	}
	return out
}

// setAll sets the status of every session's interview in the simulator.
func (c *cluster) setAll(sessions []session, status string) {
	c.t.Helper()
	for _, s := range sessions {
		resp, err := c.client.Post(c.sim+"/sim/interviews/"+s.InterviewID+"/status", "application/json",
			strings.NewReader(`{"onboardingStatus":"`+status+`"}`))
		if err != nil {
			c.t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			c.t.Fatalf("simulator control: %s", resp.Status)
		}
	}
}

// callsByInterview reads the simulator's status call counts of sessions.
func (c *cluster) callsByInterview(sessions []session) map[string]int64 {
	c.t.Helper()
	var stats struct {
		StatusByInterview map[string]int64 `json:"status_by_interview"`
	}
	resp, err := c.client.Get(c.sim + "/sim/stats")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		c.t.Fatal(err)
	}
	out := make(map[string]int64, len(sessions))
	for _, s := range sessions {
		out[s.InterviewID] = stats.StatusByInterview[s.InterviewID]
	}
	return out
}

func (c *cluster) statusCalls(sessions []session) int64 {
	var n int64
	for _, v := range c.callsByInterview(sessions) {
		n += v
	}
	return n
}

// callRate measures status calls per interview per interval over d.
func (c *cluster) callRate(sessions []session, d time.Duration) float64 {
	began, before := time.Now(), c.statusCalls(sessions)
	time.Sleep(d)
	calls := c.statusCalls(sessions) - before
	return float64(calls) / float64(len(sessions)) / (float64(time.Since(began)) / float64(clusterInterval))
}

// leaseHolder is the pid of the node holding the interview's lease.
func (c *cluster) leaseHolder(interviewID string) int {
	v, err := c.redis.Do("GET", "pushgate:{"+interviewID+"}:lease")
	if err != nil {
		c.t.Fatal(err)
	}
	parts := strings.Split(v, "/") // host/pid/random
	if len(parts) != 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[1])
	return pid
}

// checkLeases checks, on each node's /metrics, that the nodes hold one
// lease per watched interview between them, and are not degraded.
func (c *cluster) checkLeases(t *testing.T, interviews int) {
	t.Helper()
	held := 0.0
	var per []float64
	for _, n := range c.nodes {
		if v := n.metric(t, "pushgate_cluster_degraded"); v != 0 {
			t.Fatalf("%s: pushgate_cluster_degraded %v, want 0", n.base, v)
		}
		v := n.metric(t, "pushgate_cluster_leases_held")
		held += v
		per = append(per, v)
	}
	t.Logf("leases held per node: %v", per)
	if int(held) != interviews {
		t.Fatalf("the nodes hold %v leases between them (%v), want one per interview (%d)", held, per, interviews)
	}
}

// node is one pushgate process.
type node struct {
	base   string
	proc   *process // replaced by restart, in the test goroutine
	client *http.Client
	bin    string
	args   []string
	env    []string // added to the test's environment; nil: none
}

func (n *node) pid() int { return n.proc.cmd.Process.Pid }

// restart starts the node's process, again after it died, on the same
// address, and waits until it answers.
func (n *node) restart(t *testing.T) {
	n.proc = startProcessEnv(t, n.bin, n.base+"/healthz", n.env, n.args...)
}

func (n *node) kill() { n.proc.kill() }

// metric reads one unlabelled metric from the node's /metrics.
func (n *node) metric(t *testing.T, name string) float64 {
	t.Helper()
	v := metricValue(scrape(t, n.client, n.base), name)
	if v < 0 {
		t.Fatalf("%s/metrics has no %s", n.base, name)
	}
	return v
}

// waitReady waits until /readyz answers 200 with a body ok accepts.
func (n *node) waitReady(t *testing.T, ok func(body string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := n.client.Get(n.base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = resp.Status + " " + string(b)
			if resp.StatusCode == http.StatusOK && ok(string(b)) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/readyz: last answer %q", n.base, last)
}

// subscriber is one browser tab: it follows an interview's stream and,
// when its node goes away, reconnects to the next live node with
// Last-Event-ID, as EventSource does.
type subscriber struct {
	mu      sync.Mutex
	events  []flow.Update
	moves   int
	done    bool
	changed chan struct{} // signalled on every event
}

func (c *cluster) subscribe(s session, nodeIndex int) *subscriber {
	sub := &subscriber{changed: make(chan struct{}, 1)}
	c.wg.Go(func() { sub.follow(c, s, nodeIndex) })
	return sub
}

func (sub *subscriber) follow(c *cluster, s session, i int) {
	for c.ctx.Err() == nil {
		n := c.nodes[i]
		if n.proc.dead() {
			i = (i + 1) % len(c.nodes)
			continue
		}
		finished := sub.stream(c, n, s)
		if finished {
			sub.mu.Lock()
			sub.done = true
			sub.mu.Unlock()
			return
		}
		sub.mu.Lock()
		sub.moves++
		sub.mu.Unlock()
		i = (i + 1) % len(c.nodes)
		select {
		case <-c.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stream reads one connection; it reports whether the flow finished.
func (sub *subscriber) stream(c *cluster, n *node, s session) bool {
	req, _ := http.NewRequestWithContext(c.ctx, http.MethodGet, n.base+"/events?interviewId="+s.InterviewID, nil)
	req.Header.Set("X-Token", s.Token)
	if last := sub.last(); last.Seq > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(last.Seq, 10))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return true
	}
	if resp.StatusCode != http.StatusOK {
		return false
	}
	finished := false
	ssetest.Read(resp.Body, func(ev ssetest.Event) bool {
		u, err := ssetest.Update(ev)
		if err != nil {
			return true // the retry hint of an ended stream
		}
		sub.mu.Lock()
		sub.events = append(sub.events, u)
		sub.mu.Unlock()
		select {
		case sub.changed <- struct{}{}:
		default:
		}
		finished = u.Done()
		return !finished
	})
	return finished
}

func (sub *subscriber) last() flow.Update {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.events) == 0 {
		return flow.Update{}
	}
	return sub.events[len(sub.events)-1]
}

func (sub *subscriber) count() int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return len(sub.events)
}

func (sub *subscriber) reconnects() int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.moves
}

// waitAll waits until every subscriber has at least n events.
func waitAll(t *testing.T, what string, subs []*subscriber, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range subs {
		for s.count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: a subscriber has %d events (%v), want %d", what, s.count(), s.last(), n)
			}
			select {
			case <-s.changed:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// checkFlows waits for every stream to end and checks that each saw want,
// in order, once each, with increasing ids that are the same for every
// subscriber of an interview, except at the indexes in local (changes
// numbered by nodes alone).
func checkFlows(t *testing.T, subs []*subscriber, want []string, local []int) {
	t.Helper()
	waitAll(t, "every subscriber saw the flow finish", subs, len(want))
	ids := map[string][]uint64{} // interview -> the ids of its changes
	for i, s := range subs {
		s.mu.Lock()
		events := slices.Clone(s.events)
		s.mu.Unlock()
		var statuses []string
		var seqs, shared []uint64
		for k, u := range events {
			if u.End != "" {
				statuses = append(statuses, "end:"+u.End)
			} else {
				statuses = append(statuses, u.Status)
			}
			seqs = append(seqs, u.Seq)
			if !slices.Contains(local, k) {
				shared = append(shared, u.Seq)
			}
		}
		if !slices.Equal(statuses, want) {
			t.Fatalf("subscriber %d saw %v, want %v", i, statuses, want)
		}
		if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Fatalf("subscriber %d got ids %v, want them increasing", i, seqs)
		}
		id := events[0].InterviewID
		if prev, ok := ids[id]; ok && !slices.Equal(prev, shared) {
			t.Fatalf("subscribers of %s got ids %v and %v, want the same on every node", id, prev, shared)
		}
		ids[id] = shared
	}
}

// process is a command the test started; it is killed when the test ends.
type process struct {
	cmd    *exec.Cmd
	logs   *testenv.Buffer
	exited chan struct{}
}

func (p *process) dead() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// startProcess starts bin with args and waits until ready answers 200.
func startProcess(t *testing.T, bin, ready string, args ...string) *process {
	t.Helper()
	return startProcessEnv(t, bin, ready, nil, args...)
}

// startProcessEnv is startProcess with env added to the environment.
func startProcessEnv(t *testing.T, bin, ready string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), logs: &testenv.Buffer{}, exited: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			p.kill()
		}
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
			t.Logf("%s %s, last log lines:\n%s", filepath.Base(bin), strings.Join(args[:2], " "), strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				http.DefaultClient.CloseIdleConnections()
				return p
			}
		}
		if time.Now().After(deadline) || p.dead() {
			t.Fatalf("%s did not get ready: %v\n%s", bin, err, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// binaries are commands built once per test run into a temporary
// directory, removed by TestMain.
type binaries struct {
	pattern string     // of the directory's name
	builds  [][]string // go build arguments, one build per command
	once    sync.Once
	dir     string
	err     error
}

// in builds the commands, once, and returns their directory.
func (b *binaries) in(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", b.pattern); b.err != nil {
			return
		}
		for _, args := range b.builds {
			args = append([]string{"build", "-o", b.dir}, args...)
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// clusterBinaries are pushgate and pushgate-sim.
var clusterBinaries = &binaries{pattern: "pushgate-cluster-test-", builds: [][]string{{"."}, {"../pushgate-sim"}}}

// buildCommands builds pushgate and pushgate-sim once per test run, and
// returns their directory.
func buildCommands(t *testing.T) string { return clusterBinaries.in(t) }
