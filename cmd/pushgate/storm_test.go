package main

// The shutdown storm test: a node drains while clients keep arriving.
// Like the cluster tests, it skips when redis-server is missing, except
// under CI=true.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/upstream/simulator"
)

const (
	stormInterval   = 500 * time.Millisecond
	stormInterviews = 100
	stormDrainDelay = time.Second
	stormStep       = 4 * time.Second // between two changes: over a lease TTL, so a takeover hides none
	// stormExitMargin is how long before its process is seen to have
	// exited a connection cut without an answer is put down to the exit
	// itself: the kernel closes the sockets a moment before wait(2)
	// returns.
	stormExitMargin = 20 * time.Millisecond
	// stormCloseMargin is how long before its process is seen to have
	// exited a refused connection is put down to the exit: the listener
	// is the last thing a draining node closes, and the process still
	// returns from Serve and main after it (a few ms; more on a loaded
	// machine). A listener closed before the shutdown's work refuses for
	// hundreds of ms.
	stormCloseMargin = 100 * time.Millisecond
)

// TestShutdownStorm: node 0 of three holds 200 streams (two tabs of each of
// 100 interviews, which it polls) when it gets SIGTERM, with -drain-delay.
// A storm of new tabs arrives on it, one every 5 ms until its process
// exits, and every tab whose stream it ends comes straight back to it, as
// clients behind a load balancer still routing there would. Statuses keep
// changing every 4 s through the drain, the takeover of node 0's
// interviews and node 0's restart.
//
// Every answer node 0 gives after SIGTERM is a stream (while it is only
// unready) or a 503 with Retry-After and a JSON error with a code, and no
// connection to it is refused or cut while its process runs. Every tab,
// moving to the next node after a refusal, gets every status once, with
// rising ids, in the flow's order, to its end. It logs the answers and
// the times of the drain.
func TestShutdownStorm(t *testing.T) {
	testenv.SkipUnlessLong(t, "a drain under a storm of arrivals")
	c := newCluster(t, 3, "-poll-interval", stormInterval.String(), "-drain-delay", stormDrainDelay.String(), "-shutdown-grace", "5s")
	sessions := c.sessions(stormInterviews)
	changes := newChangeLog(simulator.Path(simulator.OrderIncode), sessions)
	stay := tabPolicy{stay: true}
	var tabs []*tab
	for _, s := range sessions {
		for range 2 {
			tabs = append(tabs, c.openTab(s, 0, stay)) // node 0 watches first: its pollers take the leases
		}
	}
	waitFirstEvent(t, tabs)
	time.Sleep(2 * stormInterval)

	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.InterviewID
	}
	began := time.Now()
	driving := make(chan error, 1)
	go func() {
		for k := range len(changes.flow) - 1 {
			select {
			case <-c.ctx.Done():
				driving <- c.ctx.Err()
				return
			case <-time.After(time.Until(began.Add(time.Duration(k) * stormStep))):
			}
			if err := changes.advance(c, ids); err != nil {
				driving <- err
				return
			}
		}
		driving <- nil
	}()

	time.Sleep(time.Until(began.Add(stormStep / 2)))
	draining := c.nodes[0]
	exited := make(chan time.Time, 1)
	go func(p *process) { <-p.exited; exited <- time.Now() }(draining.proc)
	probed := make(chan listenerProbe, 1)
	go func(p *process) {
		probed <- probeListener(strings.TrimPrefix(draining.base, "http://"), p.cmd.Process.Pid, p.exited)
	}(draining.proc)
	if err := draining.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	term := time.Now()
	storm := 0
	for !draining.proc.dead() {
		tabs = append(tabs, c.openTab(sessions[storm%len(sessions)], 0, stay))
		storm++
		time.Sleep(5 * time.Millisecond)
	}
	exit, probe := <-exited, <-probed
	time.Sleep(time.Second)
	draining.restart(t)

	if err := <-driving; err != nil {
		t.Fatal(err)
	}
	left := waitTabs(tabs, time.Now().Add(20*time.Second))
	c.cancel()
	c.wg.Wait()

	d := drainAnswers(tabs, term, exit)
	got := tally(tabs, changes, nil, []window{{"SIGTERM", term, exit}})
	t.Logf("shutdown storm summary: %d streams on node 0, %d tabs arriving during its drain; node 0 exited %v after SIGTERM (-drain-delay %v); its answers to the tabs after SIGTERM: %v; probe of its listener: %v; the tabs: %v; %d tabs unfinished after 20 s",
		2*stormInterviews, storm, exit.Sub(term).Round(time.Millisecond), stormDrainDelay, d.since(term), probe.since(term), got, left)
	if d.bad+d.cut > 0 {
		t.Errorf("node 0 answered %d requests during its drain with something else than a stream or a 503 with Retry-After and a JSON error code, and cut %d: %s",
			d.bad, d.cut, strings.Join(d.examples, "; "))
	}
	if !probe.known {
		t.Log("whether node 0 refused connections while it ran cannot be told on this system")
	} else if probe.before(exit.Add(-stormCloseMargin)) > 0 {
		// The listener is the last thing a draining node closes, as its
		// process exits: a refusal within the margin is that exit.
		t.Errorf("node 0 refused connections while its process still ran, instead of answering 503 with Retry-After: %v", probe.since(term))
	}
	if got.anomalies != (anomalies{}) || got.unfinished > 0 {
		t.Errorf("want 0 duplicates, reorders, regressions, unfinished tabs and lost changes; got %v; first offenders:\n%s", got, strings.Join(got.bad, "\n"))
	}
}

// drainTally sorts the answers of a draining node, from SIGTERM until its
// process exited.
type drainTally struct {
	streams   int // 200: streams served while only unready
	hinted    int // streams it ended with a retry hint
	draining  int // 503 with Retry-After and a JSON error code
	bad       int // any other answer
	refused   int // connections refused before the process exited
	cut       int // connections or streams ended with no answer or hint while it ran
	afterExit int // connections that failed as the process exited

	lastStream, firstDraining, firstRefused, lastRefused time.Time
	examples                                             []string
}

// since describes d with its times counted from term (SIGTERM).
func (d drainTally) since(term time.Time) string {
	return fmt.Sprintf("%d streams (the last opened at %s), %d of them ended with a retry hint, %d answers 503 draining (the first at %s), %d other answers, %d connections refused (%s to %s) and %d cut before the exit, %d failed as it exited",
		d.streams, after(term, d.lastStream), d.hinted, d.draining, after(term, d.firstDraining), d.bad,
		d.refused, after(term, d.firstRefused), after(term, d.lastRefused), d.cut, d.afterExit)
}

// after is t counted from term, or "never".
func after(term, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return "+" + t.Sub(term).Round(time.Millisecond).String()
}

// listenerProbe is what probeListener saw.
type listenerProbe struct {
	dials, refused int
	first, last    time.Time   // of the refusals while the process ran
	at             []time.Time // every refusal while the process ran
	known          bool        // whether the process's state could be told
}

// before counts the refusals earlier than t.
func (p listenerProbe) before(t time.Time) int {
	n := 0
	for _, at := range p.at {
		if at.Before(t) {
			n++
		}
	}
	return n
}

func (p listenerProbe) since(term time.Time) string {
	return fmt.Sprintf("%d dials, %d refused while the process ran (%s to %s)", p.dials, p.refused, after(term, p.first), after(term, p.last))
}

// probeListener dials addr every millisecond until exited closes, and
// counts the dials refused while the process pid still ran (not yet a
// zombie), which can only be a listener it closed.
func probeListener(addr string, pid int, exited <-chan struct{}) listenerProbe {
	p := listenerProbe{known: true}
	for {
		select {
		case <-exited:
			return p
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		p.dials++
		if err == nil {
			conn.Close()
		} else if errors.Is(err, syscall.ECONNREFUSED) {
			running, known := processRunning(pid)
			p.known = p.known && known
			if running {
				p.refused++
				p.at = append(p.at, time.Now())
				if p.first.IsZero() {
					p.first = time.Now()
				}
				p.last = time.Now()
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// drainAnswers sorts the connections the tabs made to node 0 between term
// and exit.
func drainAnswers(tabs []*tab, term, exit time.Time) drainTally {
	var d drainTally
	for _, tb := range tabs {
		_, conns := tb.record()
		for _, cn := range conns {
			if cn.node != 0 || cn.began.After(exit) || cn.ended.Before(term) {
				continue // another node, the restarted node 0, or over before the drain
			}
			running := cn.ended.Before(exit.Add(-stormExitMargin))
			switch {
			case cn.status == http.StatusOK:
				if cn.began.After(term) {
					d.streams++
					d.lastStream = later(d.lastStream, cn.open)
				}
				switch {
				case cn.hinted:
					d.hinted++
				case running && !tb.finishedBy(cn.ended):
					d.cut++
				}
			case cn.status == http.StatusServiceUnavailable && retryAfter(cn.retryAfter) > 0 && cn.code != "":
				d.draining++
				if d.firstDraining.IsZero() || cn.ended.Before(d.firstDraining) {
					d.firstDraining = cn.ended
				}
			case cn.status != 0:
				d.bad++
				if len(d.examples) < 5 {
					d.examples = append(d.examples, fmt.Sprintf("%d Retry-After %q code %q", cn.status, cn.retryAfter, cn.code))
				}
			case cn.refused && cn.ended.Before(exit):
				d.refused++
				if d.firstRefused.IsZero() || cn.ended.Before(d.firstRefused) {
					d.firstRefused = cn.ended
				}
				d.lastRefused = later(d.lastRefused, cn.ended)
			case !running:
				d.afterExit++
			default:
				d.cut++
				if len(d.examples) < 5 {
					d.examples = append(d.examples, "cut: "+cn.err)
				}
			}
		}
	}
	return d
}

// retryAfter reads a Retry-After in seconds; 0 when absent or not seconds.
func retryAfter(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// finishedBy reports whether the tab had the flow's end by t: its stream
// then ends by itself.
func (tb *tab) finishedBy(t time.Time) bool {
	events, _ := tb.record()
	return len(events) > 0 && events[len(events)-1].Finished() && !events[len(events)-1].at.After(t)
}
