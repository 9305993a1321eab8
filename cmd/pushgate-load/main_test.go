package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain lets the test binary serve as a -worker child too: runs with
// -procs > 1 re-execute os.Executable, which here is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == workerFlag {
		os.Exit(workerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		code = 1
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildDir  string // removed by TestMain
	builtBin  string
	buildErr  error
)

// pushgateBin builds ./cmd/pushgate once for all tests. PUSHGATE_LOAD_BIN
// names a prebuilt binary instead (e.g. while the tree does not build).
func pushgateBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("PUSHGATE_LOAD_BIN"); bin != "" {
		return bin
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH: cannot build pushgate for the end-to-end load")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "pushgate-load-test-"); buildErr == nil {
			builtBin, buildErr = buildPushgate(context.Background(), buildDir)
		}
	})
	if buildErr != nil {
		t.Fatalf("building pushgate: %v", buildErr)
	}
	return builtBin
}

// loadRun runs the tool with args plus -spawn and -json, and decodes its
// summary.
func loadRun(t *testing.T, args ...string) summary {
	t.Helper()
	return runTool(t, append([]string{"-spawn", "-pushgate-bin", pushgateBin(t)}, args...)...)
}

// runTool runs the tool with args plus -json, and decodes its summary.
func runTool(t *testing.T, args ...string) summary {
	t.Helper()
	args = append([]string{"-json", "-timeout", "50s"}, args...)
	cfg, err := parseFlags(args, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	cfg.progressEach = 500 * time.Millisecond
	var out bytes.Buffer
	if err := run(t.Context(), cfg, &out, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("the -json output is not one JSON object: %v\n%s", err, out.Bytes())
	}
	for _, key := range []string{`"mode"`, `"interviews"`, `"connections"`, `"connect_rate_per_s"`, `"events_expected"`, `"events_delivered"`,
		`"events_missed"`, `"duplicates"`, `"errors"`, `"latency_ms"`, `"p99"`, `"upstream_status_calls"`,
		`"upstream_calls_per_interview_per_interval"`, `"server_rss_bytes"`, `"server_bytes_per_conn"`} {
		if !bytes.Contains(out.Bytes(), []byte(key)) {
			t.Errorf("the -json output lacks %s", key)
		}
	}
	t.Logf("summary: %s", out.Bytes())
	return s
}

// checkDelivery asserts what every load run must show: every connection
// open, every status delivered once, no errors, latency measured.
func checkDelivery(t *testing.T, s summary, conns int) {
	t.Helper()
	if s.Connections != conns || s.Errors != 0 || s.Refused != 0 {
		t.Errorf("connections %d of %d, errors %d %v, refused %d; want all open and no errors", s.Connections, conns, s.Errors, s.ErrorsByKind, s.Refused)
	}
	if want := conns * len(walk); s.EventsExpected != want || s.EventsDelivered != want {
		t.Errorf("events delivered %d of %d expected, want %d of %d", s.EventsDelivered, s.EventsExpected, want, want)
	}
	if s.EventsMissed != 0 || s.Duplicates != 0 || s.OutOfOrder != 0 || s.Unexpected != 0 {
		t.Errorf("missed %d, duplicates %d, out of order %d, unexpected %d; want none", s.EventsMissed, s.Duplicates, s.OutOfOrder, s.Unexpected)
	}
	if s.Latency.N != conns*(len(walk)-1) || s.Latency.P50 <= 0 || s.Latency.Max < s.Latency.P99 {
		t.Errorf("latency %+v: want one sample per change per subscriber (%d)", s.Latency, conns*(len(walk)-1))
	}
	if s.ServerRSS <= 0 || s.CallsWithConnect <= 0 {
		t.Errorf("server RSS %d, upstream status calls %d: want both measured", s.ServerRSS, s.CallsWithConnect)
	}
}

// TestLoadSSE is a small load through the real gateway: 20 interviews x 10
// streams, every change delivered once and in order, at no more than one
// upstream call per interview per interval. It runs twice: with the
// built-in simulator's webhooks off (-sim-webhooks=false), so that every
// change travels through the shared poller, and as pushgate ships, with
// webhooks.
//
// The 1.05 bound: a poller that reads at both ends of a window of W
// intervals makes W+1 calls, so the formula can reach 1 + 1/W. With
// -duration 3s at 200ms (W ≈ 15) and the poller's 0-10% jitter lengthening
// each interval, that is about 1.02 at worst; a second call per interval
// would show as 2.
func TestLoadSSE(t *testing.T) {
	for _, tt := range []struct {
		name       string
		serverArgs string
		maxP50     float64 // ms
	}{
		// A change is seen at the next poll: within an interval plus 10%
		// jitter, plus scheduling on a busy 2-core box.
		{"shared poller", "-sim-webhooks=false", 400},
		// The simulator calls the webhook as it applies the change.
		{"webhooks", "", 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := loadRun(t, "-interviews", "20", "-subscribers-per-interview", "10", "-interval", "200ms", "-duration", "3s", "-server-args", tt.serverArgs)
			checkDelivery(t, s, 200)
			if s.Mode != "sse" || s.CallsPerIntervalPerIv > 1.05 {
				t.Errorf("mode %s, %.3f upstream calls per interview per interval; want sse and at most 1.05", s.Mode, s.CallsPerIntervalPerIv)
			}
			// While changes flow (about 2.25 s: W ≈ 11 intervals, so up
			// to 1 + 1/W from the window's ends); a call per change would
			// add about 0.25.
			if s.ChangesFlowing < 20 || s.FlowingS < 2 || s.CallsPerIntervalFlowing > 1.1 {
				t.Errorf("while changes flow: %d changes in %.2f s, %.3f upstream calls per interview per interval; want changes and at most 1.1",
					s.ChangesFlowing, s.FlowingS, s.CallsPerIntervalFlowing)
			}
			if s.Latency.P50 > tt.maxP50 {
				t.Errorf("latency p50 %.1f ms with a 200 ms interval; want below %v", s.Latency.P50, tt.maxP50)
			}
		})
	}
}

// TestLoadPolling is the same load the guide's way, spread over two worker
// processes: every browser costs an upstream call per interval, so the rate
// per interview is about the number of browsers on it.
func TestLoadPolling(t *testing.T) {
	s := loadRun(t, "-mode", "polling", "-procs", "2", "-interviews", "20", "-subscribers-per-interview", "10", "-interval", "200ms", "-duration", "3s")
	checkDelivery(t, s, 200)
	if s.Mode != "polling" || s.Procs != 2 {
		t.Errorf("mode %s with %d procs; want polling with 2", s.Mode, s.Procs)
	}
	if s.CallsPerIntervalPerIv < 7 || s.CallsPerIntervalPerIv > 11 {
		t.Errorf("%.3f upstream calls per interview per interval; want about 10 (one per browser)", s.CallsPerIntervalPerIv)
	}
	if s.BackendUpstreamCalls != s.CallsWithConnect {
		t.Errorf("the backend made %d upstream calls, the simulator counted %d; want equal", s.BackendUpstreamCalls, s.CallsWithConnect)
	}
}

// TestRefusalsAreReported runs against a gateway with a stream cap below the
// load: the refusals must be counted and said in words, not shown as
// timeouts.
func TestRefusalsAreReported(t *testing.T) {
	args := []string{"-interviews", "4", "-subscribers-per-interview", "5", "-interval", "200ms", "-duration", "2s", "-server-args", "-max-streams 10"}
	s := loadRun(t, args...)
	if s.Connections != 10 || s.Refused != 10 {
		t.Errorf("connections %d, refused %d; want 10 and 10 with -max-streams 10", s.Connections, s.Refused)
	}
	said := strings.Join(s.Notes, "\n")
	if !strings.Contains(said, "server refused 10 connections with 503") || !strings.Contains(said, "capacity") {
		t.Errorf("notes %q: want the 503 refusal said plainly with the server's message", said)
	}
	if s.EventsMissed != 0 || s.Duplicates != 0 {
		t.Errorf("missed %d, duplicates %d among the open streams; want none", s.EventsMissed, s.Duplicates)
	}
}

func TestFlagsAreValidated(t *testing.T) {
	for _, bad := range [][]string{
		{"-mode", "websocket"},
		{"-changes", "5"},
		{"-interviews", "0"},
		{"-interval", "1s", "-duration", "3s"}, // 4 changes need 8 s at 2 intervals apart
		{"-source-ips", "300"},
		{"stray"},
	} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	var usage bytes.Buffer
	parseFlags([]string{"-h"}, &usage)
	for _, f := range []string{"-gateway", "-sim", "-sim-control-token", "-spawn", "-pushgate-bin", "-server-args", "-interviews", "-subscribers-per-interview",
		"-interval", "-ramp", "-duration", "-changes", "-mode", "-procs", "-json", "-source-ips", "-timeout"} {
		if u := usage.String(); !strings.Contains(u, "  "+f+" ") && !strings.Contains(u, "  "+f+"\n") {
			t.Errorf("-h does not document %s", f)
		}
	}
}

func TestSourceAddressesAndAssignments(t *testing.T) {
	if got := sourceIP(5, 1).String(); got != "127.0.0.1" {
		t.Errorf("one address: %s", got)
	}
	if got := sourceIP(5, 3).String(); got != "127.0.0.3" {
		t.Errorf("conn 5 of 3 addresses: %s, want 127.0.0.3", got)
	}
	r := &runner{cfg: config{mode: "sse", interviews: 3, subscribers: 4}}
	as := r.assignments([]session{{"a", "ta"}, {"b", "tb"}, {"c", "tc"}}, []string{"http://g"}, "http://s", 2, 1, time.Now())
	var got []string
	for w, a := range as {
		for _, iv := range a.Interviews {
			got = append(got, strings.Join([]string{string(rune('0' + w)), iv.ID, string(rune('0' + iv.Subs)), string(rune('0' + iv.FirstConn))}, ":"))
		}
	}
	// 12 connections over 2 workers: b is split between them.
	if want := "0:a:4:0 0:b:2:4 1:b:2:6 1:c:4:8"; strings.Join(got, " ") != want {
		t.Errorf("assignments %q, want %q", strings.Join(got, " "), want)
	}
	// The file budget decides the number of processes.
	r = &runner{cfg: config{mode: "polling", interviews: 1000, subscribers: 10}}
	if procs, ips := r.plan(20000); procs != 2 || ips != 1 {
		t.Errorf("10,000 polling browsers under a 20,000 file limit: %d procs, %d addresses; want 2 and 1", procs, ips)
	}
	r = &runner{cfg: config{mode: "sse", interviews: 5000, subscribers: 10}}
	if procs, ips := r.plan(20000); procs != 3 || ips != 3 {
		t.Errorf("50,000 streams under a 20,000 file limit: %d procs, %d addresses; want 3 and 3", procs, ips)
	}
}

// testWriter sends the tool's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
