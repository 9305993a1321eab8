package main

import (
	"fmt"
	"strconv"
	"time"
)

// soakSummary is the soak's part of the report (summary.Soak).
type soakSummary struct {
	ChurnPerS           float64      `json:"churn_per_s"`          // streams closed and reopened per second, as asked
	InterviewLifeS      float64      `json:"interview_life_s"`     // mean life of an interview, as asked
	SoakS               float64      `json:"soak_s"`               // the churn, from the start sample to its end
	WarmUpS             float64      `json:"warm_up_s"`            // every first stream open, nothing changing, before the start sample
	SampleEveryS        float64      `json:"sample_every_s"`       // the period of samples
	StreamsClosed       int64        `json:"streams_closed"`       // by the churn
	ConnectionCycles    int64        `json:"connection_cycles"`    // of those, reopened with Last-Event-ID
	InterviewsStarted   int64        `json:"interviews_started"`   // sessions the run used, the first ones included
	InterviewsCompleted int64        `json:"interviews_completed"` // walked through every change and replaced: interview cycles
	Start               soakSample   `json:"start"`                // every first stream open, before the churn
	Samples             []soakSample `json:"samples"`              // every sample_every_s during the churn
	End                 soakSample   `json:"end"`                  // after the churn, every interview with all its streams open again
	SettleS             float64      `json:"settle_s"`             // from the churn's end to the end sample
	RSSDrift            int64        `json:"rss_drift_bytes"`      // end − start
	RSSDriftPerHour     int64        `json:"rss_drift_bytes_per_hour"`
	HeapDrift           int64        `json:"heap_inuse_drift_bytes"` // end − start
	GoroutineDrift      int64        `json:"goroutine_drift"`        // end − start
	GoroutineDriftPerH  float64      `json:"goroutine_drift_per_hour"`
	GoroutineSlack      int64        `json:"goroutine_slack"` // the drift allowed: 2 % of the start, at least 50, per node
	Leak                bool         `json:"goroutine_leak"`  // some node's goroutines stayed above start + slack
}

// apply puts the soak into the summary: its delivery tally replaces the
// per-subscriber accounting of a classic run, and its section is added.
func (k *soakRun) apply(s *summary, cfg config, results []workerResult) {
	var t soakResult
	for _, r := range results {
		if r.Soak == nil {
			continue
		}
		t.Drops += r.Soak.Drops
		t.Cycles += r.Soak.Cycles
		t.Started += r.Soak.Started
		t.Completed += r.Soak.Completed
		t.ChangesMade += r.Soak.ChangesMade
		t.Expected += r.Soak.Expected
		t.Delivered += r.Soak.Delivered
		t.Missed += r.Soak.Missed
		t.Duplicates += r.Soak.Duplicates
		t.OutOfOrder += r.Soak.OutOfOrder
		t.Unexpected += r.Soak.Unexpected
		t.Latencies = append(t.Latencies, r.Soak.Latencies...)
		t.LatencyN += r.Soak.LatencyN
		t.LatencyMax = max(t.LatencyMax, r.Soak.LatencyMax)
		t.Misses = append(t.Misses, r.Soak.Misses...)
	}
	s.ChangesMade, s.EventsExpected, s.EventsDelivered, s.EventsMissed = t.ChangesMade, t.Expected, t.Delivered, t.Missed
	s.Duplicates, s.OutOfOrder, s.Unexpected = t.Duplicates, t.OutOfOrder, t.Unexpected
	s.Latency = summarizeLatency(t.Latencies)
	s.Latency.N, s.Latency.Max = t.LatencyN, ms(t.LatencyMax) // the percentiles come from a sample
	s.Nodes = nil                                             // per node, the soak gives gauges only
	s.ConnectRate = 0                                         // the first connects are spread over an interval (runLane)
	if t.Missed > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%s expected statuses never arrived", thousands(t.Missed)))
		for _, m := range t.Misses[:min(len(t.Misses), maxMisses)] {
			s.Notes = append(s.Notes, "missed: "+m)
		}
	}
	ss := &soakSummary{
		ChurnPerS: cfg.churn, InterviewLifeS: cfg.life.Seconds(), WarmUpS: k.warmUp.Seconds(), SampleEveryS: k.every.Seconds(),
		SoakS:         round(k.stopped.Sub(k.began).Seconds(), 1),
		StreamsClosed: t.Drops, ConnectionCycles: t.Cycles, InterviewsStarted: t.Started, InterviewsCompleted: t.Completed,
		Start: k.start, Samples: k.samples, End: k.end, SettleS: round(k.end.AtS-k.stopped.Sub(k.began).Seconds(), 1),
		Leak: k.leak(),
	}
	if ss.Samples == nil {
		ss.Samples = []soakSample{}
	}
	ss.GoroutineSlack = goroutineSlackOf(k.start)
	if k.endErr == nil {
		hours := k.end.AtS / 3600
		ss.RSSDrift, ss.GoroutineDrift = k.end.RSS-k.start.RSS, k.end.Goroutines-k.start.Goroutines
		ss.HeapDrift = k.end.Heap - k.start.Heap
		if hours > 0 {
			ss.RSSDriftPerHour = int64(float64(ss.RSSDrift) / hours)
			ss.GoroutineDriftPerH = round(float64(ss.GoroutineDrift)/hours, 1)
		}
	} else {
		s.Notes = append(s.Notes, fmt.Sprintf("the end sample could not be read, so no drift: %v", k.endErr))
	}
	if ss.Leak {
		s.Notes = append(s.Notes, k.leakMessage())
	}
	if cfg.spawn {
		s.Notes = append(s.Notes, fmt.Sprintf("the built-in simulator runs in the gateway's process and keeps every interview it started (%s here): part of the RSS drift is its", thousands(int(t.Started))))
	}
	s.Soak = ss
}

// writeRows adds the soak's rows to the summary table.
func (ss *soakSummary) writeRows(row func(k, format string, a ...any)) {
	row("soak", "%v of churn after %v of warm-up: %g streams closed and reopened per second, interviews of %v on average, sampled every %v",
		seconds(ss.SoakS), seconds(ss.WarmUpS), ss.ChurnPerS, seconds(ss.InterviewLifeS), seconds(ss.SampleEveryS))
	row("cycles", "%s streams reopened with Last-Event-ID (of %s closed), %s interviews completed and replaced (%s started)",
		thousands(int(ss.ConnectionCycles)), thousands(int(ss.StreamsClosed)), thousands(int(ss.InterviewsCompleted)), thousands(int(ss.InterviewsStarted)))
	rssHour, gHour := "", ""
	if ss.SoakS >= 600 { // shorter, the rate per hour says more about the warm-up than the drift
		rssHour = fmt.Sprintf(" (%s MiB per hour)", signed(mib(ss.RSSDriftPerHour)))
		gHour = fmt.Sprintf(" (%s per hour)", signed(strconv.FormatFloat(ss.GoroutineDriftPerH, 'f', 0, 64)))
	}
	row("gateway RSS", "%s MiB at the start, %s MiB at the end: %s MiB%s; heap in use %s -> %s MiB",
		mib(ss.Start.RSS), mib(ss.End.RSS), signed(mib(ss.RSSDrift)), rssHour, mib(ss.Start.Heap), mib(ss.End.Heap))
	verdict := fmt.Sprintf("back within %s of the start %.1f s after the churn stopped", thousands(int(ss.GoroutineSlack)), ss.SettleS)
	if ss.Leak {
		verdict = fmt.Sprintf("LEAK: more than %s above the start %.1f s after the churn stopped", thousands(int(ss.GoroutineSlack)), ss.SettleS)
	}
	row("gateway goroutines", "%s at the start, %s at the end: %s%s; %s",
		thousands(int(ss.Start.Goroutines)), thousands(int(ss.End.Goroutines)), signed(strconv.FormatInt(ss.GoroutineDrift, 10)), gHour, verdict)
	if len(ss.Start.Nodes) > 1 && len(ss.End.Nodes) == len(ss.Start.Nodes) {
		for i, n := range ss.End.Nodes {
			s := ss.Start.Nodes[i]
			row(fmt.Sprintf("node %d", i+1), "%s: RSS %s -> %s MiB, goroutines %s -> %s",
				n.Gateway, mib(s.RSS), mib(n.RSS), thousands(int(s.Goroutines)), thousands(int(n.Goroutines)))
		}
	}
}

// sampleLine is a soak sample on stderr.
func (k *soakRun) sampleLine(s soakSample, elapsed time.Duration) string {
	return fmt.Sprintf("[%5.1fs] sample     gateway RSS %s MiB (%s), heap %s MiB, goroutines %s (%s); open %s, %s streams reopened, %s interviews completed",
		elapsed.Seconds(), mib(s.RSS), signed(mib(s.RSS-k.start.RSS)), mib(s.Heap), thousands(int(s.Goroutines)),
		signed(strconv.FormatInt(s.Goroutines-k.start.Goroutines, 10)), thousands(int(s.Open)), thousands(int(s.Cycles)), thousands(int(s.Completed)))
}

// signed puts a + before a number that has no sign.
func signed(n string) string {
	if n != "" && n[0] != '-' {
		return "+" + n
	}
	return n
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond)
}
