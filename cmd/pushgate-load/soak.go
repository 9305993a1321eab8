package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"
)

// A soak (-churn above 0) holds -interviews interviews with
// -subscribers-per-interview streams each for -duration, while streams
// close and reopen and interviews finish and are replaced (soakworker.go),
// and reads the gateway's memory and goroutines from its /metrics as it
// goes:
//
//	start: every first stream open, warmed up, no churn yet ──▶ the baseline
//	every soakSampleEvery during the churn             ──▶ the series
//	end: churn stopped, every lane whole again        ──▶ drift = end − start
//
// At the end the gateway holds what it held at the start: as many
// interviews, each with all its streams open. So its goroutines must come
// back to the start's, give or take goroutineSlack; if they do not within
// settleGoroutines, the run reports a leak and exits non-zero.

// Soak defaults and limits.
const (
	defaultInterviewLife = 30 * time.Second
	soakTimeoutMargin    = 10 * time.Minute // the default -timeout of a soak is -duration plus this
	settleWhole          = time.Minute      // for every lane to hold all its streams again
	// settleGoroutines bounds the wait for the goroutines to come back. It
	// outlasts the gateway's upstream client's idle connections (90 s),
	// which a burst of the churn may have opened, and -linger (10 s).
	settleGoroutines = 2 * time.Minute
)

// soakFlags adds the soak's flags to fs.
func soakFlags(fs *flag.FlagSet, c *config) {
	fs.Float64Var(&c.churn, "churn", 0, "soak: streams closed and reopened per second over all browsers (each reopens after a pause below one -interval, with Last-Event-ID); above 0 the run is a soak: for -duration, interviews finish and are replaced by new sessions too (see -interview-life), and the report adds the gateway's RSS and goroutines at the start, every minute and after the churn, their drift, and a leak verdict (exit status 1 when the goroutines do not come back); -timeout then defaults to -duration plus 10m, and -spawn gives pushgate -retention 1m (before -server-args)")
	fs.DurationVar(&c.life, "interview-life", defaultInterviewLife, "soak: mean time from an interview's session to its last change (each draws between half and 1.5 times it); then it finishes and a new session takes its place, so the soak keeps starting and finishing interviews. Half of it must fit -changes x 2 x -interval")
}

// soakDefaults sets what a soak changes in the defaults: a -timeout that
// fits -duration when none was given, and quieter progress.
func (c *config) soakDefaults(fs *flag.FlagSet) {
	if c.churn <= 0 {
		return
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "timeout" })
	if !given {
		c.timeout = c.duration + soakTimeoutMargin
	}
	c.progressEach, c.settle = 10*time.Second, settleGoroutines
}

func (c config) validateSoak() error {
	if c.churn == 0 {
		return nil
	}
	gap := minChangeGap(c.interval)
	switch {
	case c.churn < 0:
		return errors.New("-churn must not be negative")
	case c.mode != "sse":
		return errors.New("-churn soaks the gateway's streams: use -mode sse")
	case c.changes == 0:
		return errors.New("-churn needs -changes above 0: a soak walks every interview through its changes")
	case c.ramp > 0:
		return errors.New("-ramp does not apply to a soak (-churn)")
	case c.life/2 < time.Duration(c.changes)*gap:
		return fmt.Errorf("-interview-life %v is too short: half of it must fit %d changes %v apart (use at least %v)",
			c.life, c.changes, gap, 2*time.Duration(c.changes)*gap)
	case c.timeout <= c.duration:
		return fmt.Errorf("-timeout %v must exceed -duration %v", c.timeout, c.duration)
	}
	return nil
}

// soakRetention is the -retention a soak gives the gateway it spawns: the
// default (-token-ttl, 1 h) would keep every interview the soak finished
// for the whole of a 30-minute soak, and its memory would grow by design.
// Remembered for a minute, the finished interviews level off, and what
// still grows is worth a look.
const soakRetention = "1m"

// spawnArgs are the extra pushgate flags of -spawn: -server-args, after a
// soak's -retention, so that -server-args can override it.
func (c config) spawnArgs() string {
	if c.churn > 0 {
		return "-retention " + soakRetention + " " + c.serverArgs
	}
	return c.serverArgs
}

// soakSampleEvery is the period of the soak's samples: a minute, or a
// tenth of a shorter soak.
func soakSampleEvery(d time.Duration) time.Duration {
	return min(time.Minute, max(time.Second, d/10))
}

// goroutineSlack is how far a node's goroutines may end above the start
// and still count as back: 2 % of the start, at least 50. Between two
// readings with the same streams open, goroutines differ by what is in
// flight (a poll, a keep-alive connection of the gateway's upstream
// client, three goroutines each with the built-in simulator): tens, never
// a share of the streams. A leak of one goroutine per closed stream or per
// finished interview goes far past it after a few minutes of churn.
func goroutineSlack(start int64) int64 { return max(50, start/50) }

// soak runs a soak: sessions, every first stream, the churn for -duration,
// the settle; the gateway sampled throughout.
func (r *runner) soak(ctx context.Context, gateways []string, sim string, procs, sourceIPs int) (measurements, *soakRun, error) {
	m := measurements{cfg: r.cfg, gateways: gateways, sourceIPs: sourceIPs}
	sessions, err := r.sessions(ctx)
	if err != nil {
		return m, nil, err
	}
	before, err := r.api.stats(ctx)
	if err != nil {
		return m, nil, fmt.Errorf("reading %s/sim/stats: %w", sim, err)
	}
	m.serverBase, m.serverCPU = r.serverRSS(r.sampleNodes(ctx)), r.serverCPU()
	measureStart := time.Now()
	deadline, _ := ctx.Deadline()
	as := r.soakAssignments(sessions, gateways, sim, procs, sourceIPs, deadline.Add(5*time.Second))
	m.procs = len(as)
	f, err := startFleet(ctx, as, r.stderr)
	if err != nil {
		return m, nil, err
	}
	stopProgress := r.progress(f)
	defer stopProgress()
	k := &soakRun{every: soakSampleEvery(r.cfg.duration)}
	ready, err := r.soakStart(ctx, f, k)
	if err != nil {
		f.wait(10 * time.Second)
		return m, nil, err
	}
	steadyStart := time.Now()
	f.signal(workerSignal{Phase: phaseChurn})
	r.setPhase("soaking")
	k.watch(ctx, r, f, r.cfg.duration)
	f.signal(workerSignal{Phase: phaseSettle})
	r.setPhase("settling")
	k.settle(ctx, r, f)
	after, err := r.api.stats(ctx)
	if err != nil {
		return m, nil, fmt.Errorf("reading %s/sim/stats: %w", sim, err)
	}
	m.measured, m.withConnect = time.Since(steadyStart), time.Since(measureStart)
	m.serverCPU = r.serverCPU() - m.serverCPU
	// Interviews come and go, so every status call counts (the classic
	// run counts its own interviews'); a simulator shared with other
	// clients inflates this.
	m.statusCalls, m.statusCallsWithConnect = after.Status-ready.Status, after.Status-before.Status
	m.serverPk = k.peakRSS()
	r.setPhase("stopping")
	if m.results, err = f.wait(30 * time.Second); err != nil {
		return m, nil, err
	}
	stopProgress()
	m.driveErrors, m.notes, m.elapsed = r.drvErrs, r.notes, time.Since(r.began)
	return m, k, nil
}

// soakWarmUp is how long every first stream stays open, with nothing
// changing, before the start sample: after the burst of connects the
// gateway's heap takes a minute or so to level off, and its upstream
// client keeps the connections of the burst's reads idle for 90 s, three
// goroutines each with the built-in simulator. Measured from right after
// the connects, the baseline would carry hundreds of those goroutines and
// the drift a warm-up's memory. A fifth of a shorter soak.
func soakWarmUp(d time.Duration) time.Duration { return min(2*time.Minute, d/5) }

// soakStart waits for every first stream and the warm-up, and takes the
// start sample with the parent's idle keep-alive connections closed (each
// holds a goroutine in the gateway).
func (r *runner) soakStart(ctx context.Context, f *fleet, k *soakRun) (simStats, error) {
	if err := r.waitReady(ctx, f); err != nil {
		return simStats{}, err
	}
	r.setPhase("warming up")
	k.warmUp = soakWarmUp(r.cfg.duration)
	sleep(ctx, k.warmUp)
	ready, err := r.api.stats(ctx)
	if err != nil {
		return simStats{}, fmt.Errorf("reading /sim/stats: %w", err)
	}
	r.api.Close()
	k.began = time.Now()
	if k.start, err = r.soakSample(ctx, f, k.began); err != nil {
		return simStats{}, fmt.Errorf("a soak reads the gateway's /metrics (process_resident_memory_bytes, go_goroutines): %w", err)
	}
	return ready, nil
}

// soakAssignments splits the interviews into procs contiguous ranges of
// whole interviews: a soak worker renews each of its interviews itself.
func (r *runner) soakAssignments(sessions []session, gateways []string, sim string, procs, sourceIPs int, deadline time.Time) []assignment {
	subs, n := r.cfg.subscribers, len(sessions)
	procs = max(1, min(procs, n))
	out := make([]assignment, procs)
	for w := range out {
		out[w] = assignment{
			Mode: "sse", Gateways: gateways, Sim: sim, SourceIPs: sourceIPs,
			Interval: r.cfg.interval, Changes: r.cfg.changes, Deadline: deadline.UnixNano(),
			Soak: &soakPlan{Churn: r.cfg.churn / float64(procs), Life: r.cfg.life, Subs: subs, SimToken: r.cfg.simToken},
		}
		for i := w * n / procs; i < (w+1)*n/procs; i++ {
			out[w].Interviews = append(out[w].Interviews, assigned{Index: i, ID: sessions[i].ID, Token: sessions[i].Token, Subs: subs, FirstConn: i * subs})
		}
	}
	return out
}

// soakRun is what the parent keeps of a soak: the gateway's gauges over
// time, and the verdict.
type soakRun struct {
	every      time.Duration
	warmUp     time.Duration
	began      time.Time // the start sample: the steady phase begins
	start, end soakSample
	samples    []soakSample // during the churn
	stopped    time.Time    // the churn's end
	settled    bool         // every lane whole again within settleWhole
	back       bool         // the goroutines came back within settleGoroutines
	endErr     error        // the end sample could not be read
}

// soakSample is one reading of the gateway's /metrics, with the soak's
// counters at that moment.
type soakSample struct {
	AtS        float64     `json:"t_s"`                  // seconds since the start sample
	RSS        int64       `json:"rss_bytes"`            // process_resident_memory_bytes, summed over the nodes
	Goroutines int64       `json:"goroutines"`           // go_goroutines, summed over the nodes
	Heap       int64       `json:"heap_inuse_bytes"`     // go_memstats_heap_inuse_bytes, summed: what RSS holds that is live or near it
	Open       int64       `json:"open"`                 // streams open at the generator
	Cycles     int64       `json:"cycles"`               // streams reopened so far
	Completed  int64       `json:"interviews_completed"` // interviews walked to their end so far
	Nodes      []nodeGauge `json:"nodes,omitempty"`      // each node, with several -gateway URLs
}

// nodeGauge is one node's share of a sample.
type nodeGauge struct {
	Gateway    string `json:"gateway"`
	RSS        int64  `json:"rss_bytes"`
	Goroutines int64  `json:"goroutines"`
	Heap       int64  `json:"heap_inuse_bytes"`
}

// soakSample reads every node's /metrics.
func (r *runner) soakSample(ctx context.Context, f *fleet, began time.Time) (soakSample, error) {
	s := soakSample{AtS: round(time.Since(began).Seconds(), 1)}
	for _, g := range r.api.gateways {
		v, err := r.api.metrics(ctx, g, "process_resident_memory_bytes", "go_goroutines", "go_memstats_heap_inuse_bytes")
		rss, haveRSS := v["process_resident_memory_bytes"]
		gs, haveGs := v["go_goroutines"]
		switch {
		case err != nil:
			return s, err
		case !haveRSS || !haveGs:
			return s, fmt.Errorf("%s/metrics shows no process_resident_memory_bytes or go_goroutines", g)
		}
		n := nodeGauge{Gateway: g, RSS: int64(rss), Goroutines: int64(gs), Heap: int64(v["go_memstats_heap_inuse_bytes"])}
		s.RSS, s.Goroutines, s.Heap = s.RSS+n.RSS, s.Goroutines+n.Goroutines, s.Heap+n.Heap
		s.Nodes = append(s.Nodes, n)
	}
	p, _, _ := f.total()
	sp := f.soakTotal()
	s.Open, s.Cycles, s.Completed = p.Open, sp.Cycles, sp.Completed
	return s, nil
}

// watch lets the churn run for d, sampling every k.every and saying each
// sample on stderr.
func (k *soakRun) watch(ctx context.Context, r *runner, f *fleet, d time.Duration) {
	end := time.NewTimer(d)
	defer end.Stop()
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-t.C:
			s, err := r.soakSample(ctx, f, k.began)
			if err != nil {
				r.noteOnce(fmt.Sprintf("a soak sample failed (left out of the series): %v", err))
				continue
			}
			k.samples = append(k.samples, s)
			fmt.Fprintln(r.stderr, k.sampleLine(s, time.Since(r.began)))
		}
	}
}

// settle waits, after the churn, until every lane holds all its streams
// again, and then until the goroutines are back within the slack of the
// start, sampling every second; the last sample is the end.
func (k *soakRun) settle(ctx context.Context, r *runner, f *fleet) {
	k.stopped = time.Now()
	limit := k.stopped.Add(settleWhole)
	for !k.settled && time.Now().Before(limit) && ctx.Err() == nil {
		k.settled = f.soakTotal().Settled
		if !k.settled {
			sleep(ctx, 100*time.Millisecond)
		}
	}
	if !k.settled {
		r.noteOnce(fmt.Sprintf("not every interview had all its streams open again within %v of the churn's end: the end sample compares unlike states", settleWhole))
	}
	r.api.Close()
	limit = time.Now().Add(r.cfg.settle)
	for {
		s, err := r.soakSample(ctx, f, k.began)
		if err == nil {
			k.end, k.endErr = s, nil
			if k.back = backToStart(k.start, s); k.back {
				break
			}
		} else if k.end.Nodes == nil {
			k.endErr = err
		}
		if !time.Now().Before(limit) || ctx.Err() != nil {
			break
		}
		sleep(ctx, time.Second)
	}
	if k.endErr == nil {
		fmt.Fprintln(r.stderr, k.sampleLine(k.end, time.Since(r.began)))
	}
}

// backToStart reports whether every node's goroutines are within the
// slack of its start.
func backToStart(start, end soakSample) bool {
	if len(start.Nodes) != len(end.Nodes) {
		return false
	}
	for i, n := range end.Nodes {
		s := start.Nodes[i].Goroutines
		if n.Goroutines-s > goroutineSlack(s) {
			return false
		}
	}
	return true
}

// leakMessage says which goroutines did not come back.
func (k *soakRun) leakMessage() string {
	return fmt.Sprintf("goroutine leak: %s at the start, still %s %.1f s after the churn stopped (+%s, more than the %s allowed)",
		thousands(int(k.start.Goroutines)), thousands(int(k.end.Goroutines)), k.end.AtS-k.stopped.Sub(k.began).Seconds(),
		thousands(int(k.end.Goroutines-k.start.Goroutines)), thousands(int(goroutineSlackOf(k.start))))
}

// goroutineSlackOf sums the slack of every node of a sample.
func goroutineSlackOf(s soakSample) int64 {
	var n int64
	for _, g := range s.Nodes {
		n += goroutineSlack(g.Goroutines)
	}
	return n
}

// leak reports whether the soak ends with goroutines that did not come
// back; a soak whose end could not be read is not a leak, but says so.
func (k *soakRun) leak() bool { return k.endErr == nil && !k.back }

func (k *soakRun) peakRSS() int64 {
	peak := max(k.start.RSS, k.end.RSS)
	for _, s := range k.samples {
		peak = max(peak, s.RSS)
	}
	return peak
}

// soakTotal sums the soak counters of every worker; Settled once all are.
func (f *fleet) soakTotal() soakProgress {
	f.mu.Lock()
	defer f.mu.Unlock()
	sum := soakProgress{Settled: true}
	for _, p := range f.progress {
		if p.Soak == nil {
			sum.Settled = false
			continue
		}
		sum.Drops += p.Soak.Drops
		sum.Cycles += p.Soak.Cycles
		sum.Started += p.Soak.Started
		sum.Completed += p.Soak.Completed
		sum.Settled = sum.Settled && p.Soak.Settled
	}
	return sum
}
