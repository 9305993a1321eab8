package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// Shutdown tests: a node of a cluster on a real redis-server exits on
// SIGTERM within -drain-delay + -shutdown-grace + 1 s, whatever the rest
// of the cluster and Redis are doing.

const (
	termDrain = time.Duration(0)
	termGrace = 3 * time.Second
	// termBound is what a SIGTERM may take, to the process's exit.
	termBound = termDrain + termGrace + time.Second
)

// TestClusterNodesExitOnTimeWhileChangesFlow: three nodes; webhooks move
// interviews along their flow on the nodes that are not stopping, so
// those nodes commit and publish changes without pause, and every node
// hears them on the cluster's channel. Each node in turn gets SIGTERM
// and exits within the bound, then starts again.
func TestClusterNodesExitOnTimeWhileChangesFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: not with -short")
	}
	c := newCluster(t, 3, "-webhook-secret", clusterWebhookSecret, "-drain-delay", termDrain.String(), "-shutdown-grace", termGrace.String(), "-log-level", "info")
	sessions := c.sessions(600)
	subs := c.subscribeEverywhere(sessions[:30]) // the nodes poll some interviews too, and hold leases
	waitAll(t, "every subscriber has the current status", subs, 1)

	d := c.driveChanges(sessions)
	defer d.stop()
	for i, n := range c.nodes {
		d.avoid(i)
		before, since := c.stored(t, i), time.Now()
		time.Sleep(500 * time.Millisecond) // webhooks sent to it before are answered
		took, ok := n.term(termBound + 2*time.Second)
		during, window := c.stored(t, i)-before, time.Since(since)
		t.Logf("node %d: exited %v after SIGTERM (bound %v); the other nodes stored and published %v changes in the %v before", i, took.Round(time.Millisecond), termBound, during, window.Round(time.Millisecond))
		if !ok {
			t.Fatalf("node %d had not exited %v after SIGTERM, want within %v (-drain-delay %v + -shutdown-grace %v + 1 s); killed", i, took.Round(time.Millisecond), termBound, termDrain, termGrace)
		}
		if took > termBound {
			t.Fatalf("node %d exited %v after SIGTERM, want within %v", i, took.Round(time.Millisecond), termBound)
		}
		if during < 10*window.Seconds() {
			t.Fatalf("the other nodes published %v changes in %v around node %d's shutdown, want at least 10 a second: the channel was not flooded", during, window, i)
		}
		n.restart(t)
	}
	if err := d.stop(); err != "" {
		t.Fatal(err)
	}
}

// TestNodeExitsOnTimeWhileRedisHangs: Redis freezes (it takes connections
// and answers nothing) while a node serves streams and holds leases; the
// node still exits within the bound on SIGTERM, logging the stages that
// ran out of time.
func TestNodeExitsOnTimeWhileRedisHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: not with -short")
	}
	c := newCluster(t, 2, "-drain-delay", termDrain.String(), "-shutdown-grace", termGrace.String(), "-log-level", "debug")
	sessions := c.sessions(50)
	subs := c.subscribeEverywhere(sessions)
	waitAll(t, "every subscriber has the current status", subs, 1)
	c.redis.Pause()
	defer c.redis.Resume()
	time.Sleep(500 * time.Millisecond) // commands pile up on it
	n := c.nodes[0]
	took, ok := n.term(termBound + 2*time.Second)
	t.Logf("exited %v after SIGTERM with Redis hanging (bound %v); its shutdown:\n%s", took.Round(time.Millisecond), termBound, shutdownLines(n.proc.logs.String()))
	if !ok || took > termBound {
		t.Fatalf("the node exited %v after SIGTERM with Redis hanging (exited: %v), want within %v", took.Round(time.Millisecond), ok, termBound)
	}
}

// stored sums the changes the nodes other than skip stored in Redis, and
// so published on the channel.
func (c *cluster) stored(t *testing.T, skip int) float64 {
	t.Helper()
	sum := 0.0
	for i, n := range c.nodes {
		if i != skip {
			sum += max(0, metricValue(scrape(t, c.client, n.base), `pushgate_cluster_commits_total{result="stored"}`))
		}
	}
	return sum
}

// term sends SIGTERM to the node's process and waits for its exit, up to
// limit; past it, it kills the process and reports false.
func (n *node) term(limit time.Duration) (time.Duration, bool) {
	p := n.proc
	began := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return time.Since(began), true
	case <-time.After(limit):
		took := time.Since(began)
		p.kill()
		return took, false
	}
}

// shutdownLines are the log lines of a shutdown, from "shutting down" on.
func shutdownLines(logs string) string {
	if i := strings.Index(logs, "shutting down"); i >= 0 {
		if j := strings.LastIndex(logs[:i], "\n"); j >= 0 {
			return logs[j+1:]
		}
		return logs
	}
	return "(no shutdown logged)"
}

// changeDriver moves interviews along their flow with webhooks, one after
// another without pause, sent to the nodes it does not avoid.
type changeDriver struct {
	avoiding atomic.Int64 // index of the node not to send to; -1: none
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	mu       sync.Mutex // protects errs
	errs     []string
}

// flowSteps are the statuses every interview is moved through.
var flowSteps = []string{"ID_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED", "FACE_VALIDATION_FINISHED", "GOVERNMENT_VALIDATION_FINISHED", flow.StatusFinished}

func (c *cluster) driveChanges(sessions []session) *changeDriver {
	d := &changeDriver{done: make(chan struct{})}
	d.avoiding.Store(-1)
	d.wg.Go(func() {
		k := 0
		for _, status := range flowSteps {
			for _, s := range sessions {
				select {
				case <-d.done:
					return
				case <-c.ctx.Done():
					return
				default:
				}
				k++
				to := k % len(c.nodes)
				if int64(to) == d.avoiding.Load() {
					to = (to + 1) % len(c.nodes)
				}
				if c.nodes[to].proc.dead() {
					continue
				}
				d.send(c, to, s.InterviewID, status)
				time.Sleep(10 * time.Millisecond) // about 80 changes a second
			}
		}
		d.fail("the driver ran out of changes before the test ended: give it more sessions")
	})
	return d
}

func (d *changeDriver) avoid(node int) { d.avoiding.Store(int64(node)) }

func (d *changeDriver) send(c *cluster, node int, interviewID, status string) {
	req, _ := http.NewRequest(http.MethodPost, c.nodes[node].base+"/webhooks/onboarding-status",
		strings.NewReader(`{"interviewId":"`+interviewID+`","onboardingStatus":"`+status+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+clusterWebhookSecret)
	resp, err := c.client.Do(req)
	if err != nil {
		return // a node restarting
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		d.fail(fmt.Sprintf("webhook %s of %s to node %d: %s", status, interviewID, node, resp.Status))
	}
}

func (d *changeDriver) fail(msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errs = append(d.errs, msg)
}

// stop ends the driver and returns what went wrong, "" when nothing.
func (d *changeDriver) stop() string {
	d.once.Do(func() { close(d.done) })
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.errs, "; ")
}
