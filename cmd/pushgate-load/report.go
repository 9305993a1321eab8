package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// summary is the outcome of a run, printed as a table or as JSON.
type summary struct {
	Mode                        string         `json:"mode"`
	Interviews                  int            `json:"interviews"`
	SubscribersPerInterview     int            `json:"subscribers_per_interview"`
	Target                      int            `json:"target_connections"`
	Connections                 int            `json:"connections"`
	ConnectRate                 float64        `json:"connect_rate_per_s"`
	ChangesMade                 int            `json:"changes_made"`
	EventsExpected              int            `json:"events_expected"`
	EventsDelivered             int            `json:"events_delivered"`
	EventsMissed                int            `json:"events_missed"`
	Duplicates                  int            `json:"duplicates"`
	OutOfOrder                  int            `json:"out_of_order"`
	Unexpected                  int            `json:"unexpected_statuses"`
	Errors                      int            `json:"errors"`
	ErrorsByKind                map[string]int `json:"errors_by_kind,omitempty"`
	Refused                     int            `json:"refused"`
	Latency                     latencySummary `json:"latency_ms"`
	UpstreamStatusCalls         int64          `json:"upstream_status_calls"` // with every connection open: from the first change to the end
	CallsPerIntervalPerIv       float64        `json:"upstream_calls_per_interview_per_interval"`
	CallsWithConnect            int64          `json:"upstream_status_calls_with_connect"` // from before the first connection
	CallsPerIntervalWithConnect float64        `json:"upstream_calls_per_interview_per_interval_with_connect"`
	CallsFlowing                int64          `json:"upstream_status_calls_while_changing"` // from the first change until a flow may finish (see flowingUntil)
	CallsPerIntervalFlowing     float64        `json:"upstream_calls_per_interview_per_interval_while_changing"`
	FlowingS                    float64        `json:"while_changing_s"`
	ChangesFlowing              int            `json:"changes_while_changing"`
	Interval                    string         `json:"interval"`
	Polls                       int64          `json:"polls,omitempty"`
	BackendUpstreamCalls        int64          `json:"backend_upstream_calls,omitempty"`
	ServerRSS                   int64          `json:"server_rss_bytes"`
	ServerRSSBaseline           int64          `json:"server_rss_baseline_bytes"`
	ServerBytesPerConn          int64          `json:"server_bytes_per_conn"`
	ServerCPU                   float64        `json:"server_cpu_seconds"`
	GeneratorRSS                int64          `json:"generator_rss_bytes"`
	GeneratorBytesPerConn       int64          `json:"generator_bytes_per_conn"`
	Procs                       int            `json:"procs"`
	SourceIPs                   int            `json:"source_ips"`
	ElapsedS                    float64        `json:"elapsed_s"`
	MeasuredS                   float64        `json:"measured_s"`
	Nodes                       []nodeSummary  `json:"nodes,omitempty"` // with several -gateway URLs: each node's share
	Soak                        *soakSummary   `json:"soak,omitempty"`  // with -churn (soakreport.go)
	Notes                       []string       `json:"notes,omitempty"`
}

// nodeSummary is one gateway node's share of a run against a cluster.
type nodeSummary struct {
	Gateway         string         `json:"gateway"`
	Sessions        int            `json:"sessions"` // /onboarding-url calls sent here
	Target          int            `json:"target_connections"`
	Connections     int            `json:"connections"` // streams open here
	Failed          int            `json:"failed"`      // streams that could not be opened here
	EventsExpected  int            `json:"events_expected"`
	EventsDelivered int            `json:"events_delivered"`
	EventsMissed    int            `json:"events_missed"`
	Duplicates      int            `json:"duplicates"`
	OutOfOrder      int            `json:"out_of_order"`
	Errors          int            `json:"errors"`
	Latency         latencySummary `json:"latency_ms"`
	RSS             int64          `json:"rss_bytes"`   // peak, from its /metrics
	CPU             float64        `json:"cpu_seconds"` // from before connecting to the end, from its /metrics
}

// nodeMeasure is what a gateway node's /metrics said during a run.
type nodeMeasure struct {
	gateway          string
	rssBase, rssPeak int64
	cpu              float64
}

// measurements are the raw numbers a run gathered, beside the receipts.
type measurements struct {
	cfg                            config
	gateways                       []string
	nodes                          []nodeMeasure // with several gateways
	procs, sourceIPs               int
	results                        []workerResult
	changedAt                      [][]int64
	driveErrors                    map[string]int
	statusCalls                    int64 // over measured: every connection open, changes, drain
	statusCallsWithConnect         int64 // over withConnect: from before the first connection
	statusCallsFlowing             int64 // over flowing: from the first change until a flow may finish
	changesFlowing                 int   // changes sent within flowing
	measured, withConnect, elapsed time.Duration
	flowing                        time.Duration
	serverBase, serverPk           int64
	serverCPU                      float64
	notes                          []string
}

func buildSummary(m measurements) summary {
	s := summary{
		Mode: m.cfg.mode, Interviews: m.cfg.interviews, SubscribersPerInterview: m.cfg.subscribers,
		Target: m.cfg.interviews * m.cfg.subscribers, Interval: m.cfg.interval.String(),
		UpstreamStatusCalls: m.statusCalls, ServerRSS: m.serverPk, ServerRSSBaseline: m.serverBase,
		ServerCPU: round(m.serverCPU, 2), Procs: m.procs, SourceIPs: m.sourceIPs,
		ElapsedS: round(m.elapsed.Seconds(), 2), MeasuredS: round(m.measured.Seconds(), 2),
		ErrorsByKind: map[string]int{}, Notes: m.notes,
	}
	var subs []subReport
	var first, last, genBase, genPeak int64
	for _, r := range m.results {
		subs = append(subs, r.Subs...)
		s.Connections += r.Connected
		s.Refused += r.Refused
		s.Polls += r.Polls
		s.BackendUpstreamCalls += r.BackendCalls
		genBase, genPeak = genBase+r.RSSBase, genPeak+r.RSSPeak
		if r.FirstTry != 0 && (first == 0 || r.FirstTry < first) {
			first = r.FirstTry
		}
		last = max(last, r.LastOpen)
		addCounts(s.ErrorsByKind, r.Errors)
	}
	addCounts(s.ErrorsByKind, m.driveErrors)
	for _, n := range s.ErrorsByKind {
		s.Errors += n
	}
	if last > first && s.Connections > 1 {
		s.ConnectRate = round(float64(s.Connections)/time.Duration(last-first).Seconds(), 1)
	}
	for _, row := range m.changedAt {
		for _, at := range row {
			if at != 0 {
				s.ChangesMade++
			}
		}
	}
	t := account(subs, m.changedAt)
	s.EventsExpected, s.EventsDelivered, s.EventsMissed = t.Expected, t.Delivered, t.Missed
	s.Duplicates, s.OutOfOrder, s.Unexpected = t.Duplicates, t.OutOfOrder, t.Unexpected
	s.Latency = summarizeLatency(t.Latencies)
	s.CallsWithConnect = m.statusCallsWithConnect
	s.CallsPerIntervalPerIv = callsPerInterval(m.statusCalls, m.cfg.interviews, m.measured, m.cfg.interval)
	s.CallsPerIntervalWithConnect = callsPerInterval(m.statusCallsWithConnect, m.cfg.interviews, m.withConnect, m.cfg.interval)
	s.CallsFlowing, s.FlowingS, s.ChangesFlowing = m.statusCallsFlowing, round(m.flowing.Seconds(), 2), m.changesFlowing
	s.CallsPerIntervalFlowing = callsPerInterval(m.statusCallsFlowing, m.cfg.interviews, m.flowing, m.cfg.interval)
	if s.Connections > 0 {
		s.ServerBytesPerConn = max(0, m.serverPk-m.serverBase) / int64(s.Connections)
		s.GeneratorBytesPerConn = max(0, genPeak-genBase) / int64(s.Connections)
	}
	s.GeneratorRSS = genPeak
	if len(m.gateways) > 1 && m.cfg.mode == "sse" {
		s.Nodes = nodeSummaries(m, subs)
	}
	s.Notes = append(s.Notes, plainNotes(s)...)
	return s
}

// nodeSummaries splits the run by gateway node: session i was created at
// node i mod N, subscriber k of interview i streamed from node (i+k) mod N.
func nodeSummaries(m measurements, subs []subReport) []nodeSummary {
	n := len(m.gateways)
	out := make([]nodeSummary, n)
	for i, g := range m.gateways {
		out[i].Gateway = g
	}
	for i := range m.cfg.interviews {
		out[i%n].Sessions++
		for k := range m.cfg.subscribers {
			out[(i+k)%n].Target++
		}
	}
	for _, r := range m.results {
		for i := range min(n, len(r.NodeErrors)) {
			out[i].Errors += r.NodeErrors[i]
		}
		for i := range min(n, len(r.NodeFailed)) {
			out[i].Failed += r.NodeFailed[i]
		}
	}
	byNode := make([][]subReport, n)
	for _, s := range subs {
		byNode[s.Node] = append(byNode[s.Node], s)
	}
	for i := range out {
		t := account(byNode[i], m.changedAt)
		out[i].Connections = len(byNode[i])
		out[i].EventsExpected, out[i].EventsDelivered, out[i].EventsMissed = t.Expected, t.Delivered, t.Missed
		out[i].Duplicates, out[i].OutOfOrder = t.Duplicates, t.OutOfOrder
		out[i].Latency = summarizeLatency(t.Latencies)
	}
	for i, nm := range m.nodes {
		out[i].RSS, out[i].CPU = nm.rssPeak, round(nm.cpu, 2)
	}
	return out
}

// callsPerInterval is calls / (interviews * window/interval): 1 means one
// upstream status call per interview per interval.
func callsPerInterval(calls int64, interviews int, window, interval time.Duration) float64 {
	intervals := window.Seconds() / interval.Seconds()
	if intervals <= 0 || interviews <= 0 {
		return 0
	}
	return round(float64(calls)/(float64(interviews)*intervals), 3)
}

func addCounts(dst, src map[string]int) {
	for k, n := range src {
		dst[k] += n
	}
}

func round(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return f
}

// plainNotes says in words what stopped or hurt a run, so that a cap or a
// file limit reads as such and not as a vague timeout.
func plainNotes(s summary) []string {
	var notes []string
	for _, kind := range slices.Sorted(maps.Keys(s.ErrorsByKind)) {
		n := s.ErrorsByKind[kind]
		switch {
		case strings.HasPrefix(kind, "connect: HTTP 503"), strings.HasPrefix(kind, "connect: HTTP 429"):
			notes = append(notes, fmt.Sprintf("server refused %s connections with %s", thousands(n), strings.TrimPrefix(kind, "connect: HTTP ")))
		case kind == "connect: timed out":
			notes = append(notes, fmt.Sprintf("%s connection attempts timed out: the server is not accepting (check its file limit, ulimit -n, and its accept backlog)", thousands(n)))
		case strings.HasPrefix(kind, "connect: too many open files"):
			notes = append(notes, fmt.Sprintf("%s connections failed on the generator's own open-file limit: raise -procs", thousands(n)))
		case strings.HasPrefix(kind, "connect: no free source port"):
			notes = append(notes, fmt.Sprintf("%s connections found no free source port: raise -source-ips", thousands(n)))
		case strings.HasPrefix(kind, "connect: connection reset"), strings.HasPrefix(kind, "connect: server closed"):
			notes = append(notes, fmt.Sprintf("the server dropped %s connections before answering (out of file descriptors or memory?)", thousands(n)))
		}
	}
	if s.Connections > 0 && s.EventsMissed > 0 {
		notes = append(notes, fmt.Sprintf("%s expected statuses never arrived", thousands(s.EventsMissed)))
	}
	return notes
}

// thousands writes n with comma separators: 1234 -> "1,234".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func (s summary) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// writeTable prints the summary for people.
func (s summary) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, format string, a ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...)
	}
	row("mode", "%s (interval %s, %d procs, %d source addresses)", s.Mode, s.Interval, s.Procs, s.SourceIPs)
	row("connections", "%s of %s (%.0f/s)", thousands(s.Connections), thousands(s.Target), s.ConnectRate)
	row("changes made", "%s", thousands(s.ChangesMade))
	row("events delivered", "%s of %s expected", thousands(s.EventsDelivered), thousands(s.EventsExpected))
	row("missed / duplicates / out of order", "%d / %d / %d", s.EventsMissed, s.Duplicates, s.OutOfOrder)
	row("latency ms", "p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  (n=%d)", s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.Max, s.Latency.N)
	row("upstream status calls", "%s = %.3f per interview per interval while changes flow (first %.1f s of driving: %s changes, no flow finished yet)",
		thousands(int(s.CallsFlowing)), s.CallsPerIntervalFlowing, s.FlowingS, thousands(s.ChangesFlowing))
	row("", "%s = %.3f over the whole %.1f s with every connection open (finished flows are no longer polled)", thousands(int(s.UpstreamStatusCalls)), s.CallsPerIntervalPerIv, s.MeasuredS)
	row("", "%s = %.3f counting the connect phase too", thousands(int(s.CallsWithConnect)), s.CallsPerIntervalWithConnect)
	row("server RSS", "%s MiB peak, %s MiB before, %s bytes per connection", mib(s.ServerRSS), mib(s.ServerRSSBaseline), thousands(int(s.ServerBytesPerConn)))
	row("server CPU", "%.2f s", s.ServerCPU)
	row("generator RSS", "%s MiB, %s bytes per connection", mib(s.GeneratorRSS), thousands(int(s.GeneratorBytesPerConn)))
	row("errors", "%d (%d refused by the server)", s.Errors, s.Refused)
	for _, k := range slices.Sorted(maps.Keys(s.ErrorsByKind)) {
		row("", "%6d  %s", s.ErrorsByKind[k], k)
	}
	for i, n := range s.Nodes {
		row(fmt.Sprintf("node %d", i+1), "%s: %s sessions, %s of %s streams, %s of %s events, missed %d, dup %d, errors %d, p50 %.1f p99 %.1f ms, RSS %s MiB, CPU %.2f s",
			n.Gateway, thousands(n.Sessions), thousands(n.Connections), thousands(n.Target), thousands(n.EventsDelivered), thousands(n.EventsExpected),
			n.EventsMissed, n.Duplicates, n.Errors, n.Latency.P50, n.Latency.P99, mib(n.RSS), n.CPU)
	}
	if s.Soak != nil {
		s.Soak.writeRows(row)
	}
	row("elapsed", "%.1f s", s.ElapsedS)
	for _, n := range s.Notes {
		row("note", "%s", n)
	}
	return tw.Flush()
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }

// progressLine is the once-a-second status on stderr.
func progressLine(p progress, target int, elapsed time.Duration, phase string) string {
	return fmt.Sprintf("[%5.1fs] %-10s open %s/%s  events %s  errors %s",
		elapsed.Seconds(), phase, thousands(int(p.Open)), thousands(target), thousands(int(p.Events)), thousands(int(p.Errors)))
}
