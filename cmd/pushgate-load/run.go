package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// connsPerSourceIP is how many connections the automatic -source-ips puts
// on one source address, below the ~28k ephemeral ports it has.
const connsPerSourceIP = 20000

// runner holds what the phases of one run share. run is its only user.
type runner struct {
	cfg     config
	stderr  io.Writer
	began   time.Time
	api     *api
	srv     *server // nil when the server was not spawned
	phase   atomic.Pointer[string]
	notes   []string
	mu      sync.Mutex // protects drvErr
	drvErrs map[string]int
}

// run performs one load run and prints its summary on stdout.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	r := &runner{cfg: cfg, stderr: stderr, began: time.Now(), drvErrs: map[string]int{}}
	r.setPhase("starting")
	procs, sourceIPs := r.plan(raiseFileLimit())
	gateways, sim, stop, err := r.servers(ctx)
	if err != nil {
		return err
	}
	defer stop()
	r.api = newAPI(gateways, sim, cfg.simAPIKey, cfg.simToken)
	defer r.api.Close()
	var m measurements
	var soak *soakRun
	if cfg.churn > 0 {
		m, soak, err = r.soak(ctx, gateways, sim, procs, sourceIPs)
	} else {
		m, err = r.load(ctx, gateways, sim, procs, sourceIPs)
	}
	if err != nil {
		return err
	}
	s := buildSummary(m)
	if soak != nil {
		soak.apply(&s, cfg, m.results)
	}
	write := s.writeTable
	if cfg.jsonOut {
		write = s.writeJSON
	}
	if err := write(stdout); err != nil {
		return err
	}
	if soak != nil && soak.leak() {
		return errors.New(soak.leakMessage())
	}
	return nil
}

// plan picks the number of worker processes and source addresses: as few
// as the open-file limit and the ephemeral port range allow.
func (r *runner) plan(fileLimit uint64) (procs, sourceIPs int) {
	total := r.cfg.interviews * r.cfg.subscribers
	perConn, extra := 1, 0
	if r.cfg.mode == "polling" {
		perConn, extra = 2, upstreamPool // a browser and its backend end live in one worker
	}
	budget := max(1, int(fileLimit)-fileReserve-extra)
	need := (total*perConn + budget - 1) / budget
	procs = r.cfg.procs
	if procs == 0 {
		procs = need
	} else if procs < need {
		r.notes = append(r.notes, fmt.Sprintf("-procs %d holds %s connections per process, over its open-file budget of %s (limit %d): expect \"too many open files\"",
			procs, thousands(total*perConn/procs), thousands(budget), fileLimit))
	}
	procs = max(1, min(procs, total))
	sourceIPs = r.cfg.sourceIPs
	if sourceIPs == 0 {
		sourceIPs = min(254, (total+connsPerSourceIP-1)/connsPerSourceIP)
	}
	return procs, sourceIPs
}

// servers spawns pushgate when asked, and answers the gateway URLs (one,
// or the nodes of a cluster) and the simulator URL with a func that stops
// what was started.
func (r *runner) servers(ctx context.Context) (gateways []string, sim string, stop func(), err error) {
	if !r.cfg.spawn {
		return r.cfg.gateways, r.cfg.sim, func() {}, nil
	}
	r.setPhase("spawning")
	tmp, err := os.MkdirTemp("", "pushgate-load-")
	if err != nil {
		return nil, "", nil, err
	}
	srv, err := spawnServer(ctx, spawnOptions{
		bin: r.cfg.pushgateBin, tmpDir: tmp, interval: r.cfg.interval,
		perInterview: r.cfg.subscribers, extraArgs: r.cfg.spawnArgs(),
	})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, "", nil, err
	}
	r.srv = srv
	return []string{srv.Gateway}, srv.Sim, func() { srv.Stop(); os.RemoveAll(tmp) }, nil
}

// load runs the phases: sessions, connections, changes, drain.
func (r *runner) load(ctx context.Context, gateways []string, sim string, procs, sourceIPs int) (measurements, error) {
	m := measurements{cfg: r.cfg, gateways: gateways, procs: procs, sourceIPs: sourceIPs}
	sessions, err := r.sessions(ctx)
	if err != nil {
		return m, err
	}
	before, err := r.api.stats(ctx)
	if err != nil {
		return m, fmt.Errorf("reading %s/sim/stats: %w", sim, err)
	}
	baseNodes := r.sampleNodes(ctx)
	m.serverBase, m.serverCPU = r.serverRSS(baseNodes), r.serverCPU()
	measureStart := time.Now()
	deadline, _ := ctx.Deadline()
	f, err := startFleet(ctx, r.assignments(sessions, gateways, sim, procs, sourceIPs, deadline.Add(5*time.Second)), r.stderr)
	if err != nil {
		return m, err
	}
	stopProgress := r.progress(f)
	defer stopProgress()
	if err := r.waitReady(ctx, f); err != nil {
		f.wait(10 * time.Second)
		return m, err
	}
	peakNodes := r.sampleNodes(ctx)
	m.serverPk = r.serverRSS(peakNodes)
	ready, err := r.api.stats(ctx)
	if err != nil {
		return m, fmt.Errorf("reading %s/sim/stats: %w", sim, err)
	}
	steadyStart := time.Now()
	var flowing flowingWindow
	m.changedAt, flowing = r.drive(ctx, sessions)
	r.drain(ctx, f)
	after, err := r.api.stats(ctx)
	if err != nil {
		return m, fmt.Errorf("reading %s/sim/stats: %w", sim, err)
	}
	m.measured, m.withConnect = time.Since(steadyStart), time.Since(measureStart)
	m.serverCPU = r.serverCPU() - m.serverCPU
	if len(gateways) > 1 && r.srv == nil && r.cfg.mode == "sse" {
		m.nodes = nodeMeasures(gateways, baseNodes, peakNodes, r.sampleNodes(ctx))
		m.serverCPU = 0
		for _, n := range m.nodes {
			m.serverCPU += n.cpu
		}
	}
	m.statusCalls, m.statusCallsWithConnect = statusCalls(ready, after, sessions), statusCalls(before, after, sessions)
	if flowing.err != nil {
		r.noteOnce(fmt.Sprintf("upstream calls while changes flow not measured: reading %s/sim/stats: %v", sim, flowing.err))
	} else {
		m.statusCallsFlowing, m.flowing = statusCalls(ready, flowing.stats, sessions), flowing.at.Sub(steadyStart)
		m.changesFlowing = changesBefore(m.changedAt, flowing.at)
	}
	r.setPhase("stopping")
	if m.results, err = f.wait(30 * time.Second); err != nil {
		return m, err
	}
	stopProgress()
	m.driveErrors, m.notes, m.elapsed = r.drvErrs, r.notes, time.Since(r.began)
	return m, nil
}

// sessions creates the interviews: through the gateway like a page (sse),
// or directly at the simulator like the guide's backend (polling).
func (r *runner) sessions(ctx context.Context) ([]session, error) {
	r.setPhase("sessions")
	start, where := r.api.gatewaySession, "GET /onboarding-url"
	if r.cfg.mode == "polling" {
		start, where = r.api.simSession, "POST /omni/start"
	}
	s, err := createSessions(ctx, r.cfg.interviews, start)
	var he *httpStatusError
	if errors.As(err, &he) && he.Code == 429 {
		return nil, fmt.Errorf("creating sessions with %s: %w (start pushgate with -sessions-per-minute -1 -max-sessions-per-minute -1, or use -spawn)", where, err)
	}
	if err != nil {
		return nil, fmt.Errorf("creating sessions with %s: %w", where, err)
	}
	return s, nil
}

// assignments splits the connections into procs contiguous ranges.
func (r *runner) assignments(sessions []session, gateways []string, sim string, procs, sourceIPs int, deadline time.Time) []assignment {
	subs := r.cfg.subscribers
	total := len(sessions) * subs
	out := make([]assignment, procs)
	for w := range out {
		out[w] = assignment{
			Mode: r.cfg.mode, Gateways: gateways, Sim: sim, SourceIPs: sourceIPs, Rate: r.cfg.ramp / float64(procs),
			Interval: r.cfg.interval, Changes: r.cfg.changes, Deadline: deadline.UnixNano(),
		}
		lo, hi := w*total/procs, (w+1)*total/procs
		for c := lo; c < hi; {
			i := c / subs
			end := min(hi, (i+1)*subs)
			out[w].Interviews = append(out[w].Interviews, assigned{Index: i, ID: sessions[i].ID, Token: sessions[i].Token, Subs: end - c, FirstConn: c, FirstSub: c - i*subs})
			c = end
		}
	}
	return out
}

// waitReady waits until every connection attempt has been resolved.
func (r *runner) waitReady(ctx context.Context, f *fleet) error {
	r.setPhase("connecting")
	for {
		_, ready, failed := f.total()
		switch {
		case failed != nil:
			return failed
		case ready:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connecting: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// drive makes the status changes over -duration, and reads the
// simulator's counters when the first change that finishes a flow is due
// (see flowingUntil).
func (r *runner) drive(ctx context.Context, sessions []session) ([][]int64, flowingWindow) {
	r.setPhase("changing")
	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.ID
	}
	plan := planChanges(len(ids), r.cfg.changes, r.cfg.duration, r.cfg.interval, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	flowing := r.readFlowing(ctx, flowingUntil(plan, r.cfg.duration))
	dctx, cancel := context.WithTimeout(ctx, r.cfg.duration+30*time.Second) // bounded even if the simulator stalls
	defer cancel()
	changedAt := drive(dctx, plan, ids, r.cfg.changes, r.api.setStatus, func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.drvErrs["change: "+errorKind(err)]++
	})
	// Without changes, hold the connections open for the duration anyway.
	if r.cfg.changes == 0 {
		sleep(ctx, r.cfg.duration)
	}
	return changedAt, <-flowing
}

// drain waits until every connected subscriber saw the last status driven,
// or every stream ended, for a bounded time: a late poll takes up to an
// interval plus jitter, a loaded box more.
func (r *runner) drain(ctx context.Context, f *fleet) {
	r.setPhase("draining")
	limit := time.Now().Add(3*time.Second + 5*r.cfg.interval)
	for time.Now().Before(limit) && ctx.Err() == nil {
		p, _, _ := f.total()
		if p.Settled >= p.Attempted-p.Failed || p.Open == 0 {
			return
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// statusCalls counts the upstream status calls made for the run's
// interviews between the two readings.
func statusCalls(before, after simStats, sessions []session) int64 {
	var n int64
	for _, s := range sessions {
		n += after.StatusByInterview[s.ID] - before.StatusByInterview[s.ID]
	}
	return n
}

// nodeSample is one reading of a gateway's /metrics.
type nodeSample struct {
	rss int64
	cpu float64
	err error
}

// sampleNodes reads the /metrics of every gateway this tool did not start
// (nil when it spawned the server).
func (r *runner) sampleNodes(ctx context.Context) []nodeSample {
	if r.srv != nil {
		return nil
	}
	out := make([]nodeSample, len(r.api.gateways))
	for i, g := range r.api.gateways {
		out[i].rss, out[i].cpu, out[i].err = r.api.processMetrics(ctx, g)
	}
	return out
}

// serverRSS reads the server's resident memory: from /proc when spawned,
// else from the /metrics samples (summed over the nodes of a cluster),
// else 0 with a note saying why.
func (r *runner) serverRSS(samples []nodeSample) int64 {
	if r.srv != nil {
		v, _ := procRSS(strconv.Itoa(r.srv.Pid()))
		return v
	}
	var total int64
	for _, s := range samples {
		if s.err != nil {
			r.noteOnce(fmt.Sprintf("server memory unknown (reported as 0): %v; use -spawn to read it from /proc", s.err))
		}
		total += s.rss
	}
	return total
}

// nodeMeasures pairs the /metrics samples of each node: peak memory, and
// the CPU used from before the first connection to the end of the drain.
func nodeMeasures(gateways []string, base, peak, end []nodeSample) []nodeMeasure {
	out := make([]nodeMeasure, len(gateways))
	for i, g := range gateways {
		out[i] = nodeMeasure{gateway: g, rssBase: base[i].rss, rssPeak: peak[i].rss}
		if base[i].err == nil && end[i].err == nil {
			out[i].cpu = end[i].cpu - base[i].cpu
		}
	}
	return out
}

func (r *runner) serverCPU() float64 {
	if r.srv == nil {
		return 0
	}
	v, _ := procCPU(strconv.Itoa(r.srv.Pid()))
	return v
}

func (r *runner) noteOnce(n string) {
	for _, have := range r.notes {
		if have == n {
			return
		}
	}
	r.notes = append(r.notes, n)
}

func (r *runner) setPhase(p string) { r.phase.Store(&p) }

// progress prints a line on stderr every progressEach until stopped; the
// returned func may be called more than once.
func (r *runner) progress(f *fleet) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(r.cfg.progressEach)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p, _, _ := f.total()
				fmt.Fprintln(r.stderr, progressLine(p, r.cfg.interviews*r.cfg.subscribers, time.Since(r.began), *r.phase.Load()))
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-exited }) }
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
