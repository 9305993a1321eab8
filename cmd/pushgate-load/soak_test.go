package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
)

// TestSoak runs a short soak against a spawned gateway whose pollers do
// the work (-sim-webhooks=false, so pollers start and stop with the
// interviews): streams close and reopen with Last-Event-ID, interviews
// finish and are replaced by new sessions, and still every status arrives
// once and in order. The gateway's RSS and goroutines are read at the
// start, every second and at the end, and its goroutines come back. Two
// worker processes hold the streams, so the soak's phases also travel to
// -worker children.
func TestSoak(t *testing.T) {
	testenv.SkipUnlessLong(t, "a 10 s soak with churn")
	const interviews, subs = 10, 3
	s := loadRun(t, "-procs", "2", "-interviews", "10", "-subscribers-per-interview", "3", "-interval", "200ms", "-duration", "10s",
		"-churn", "20", "-interview-life", "4s", "-server-args", "-sim-webhooks=false -linger 1s")
	k := s.Soak
	if k == nil {
		t.Fatal("the report of a soak has no soak section")
	}

	// Delivery held over the churn.
	if s.Procs != 2 || s.Connections != interviews*subs || s.Errors != 0 || s.Refused != 0 {
		t.Errorf("%d procs, connections %d of %d, errors %d %v, refused %d; want 2, all open and no errors", s.Procs, s.Connections, interviews*subs, s.Errors, s.ErrorsByKind, s.Refused)
	}
	if s.EventsMissed != 0 || s.Duplicates != 0 || s.OutOfOrder != 0 || s.Unexpected != 0 || s.EventsDelivered != s.EventsExpected {
		t.Errorf("delivered %d of %d, missed %d, duplicates %d, out of order %d, unexpected %d; want every status once and in order",
			s.EventsDelivered, s.EventsExpected, s.EventsMissed, s.Duplicates, s.OutOfOrder, s.Unexpected)
	}
	if s.Latency.N == 0 || s.Latency.P50 <= 0 || s.Latency.Max < s.Latency.P99 {
		t.Errorf("latency %+v: want it measured", s.Latency)
	}

	// Cycles happened: about 20 closes a second for 10 s, nearly all
	// reopened (a stream closed as its flow ends is not); interviews
	// finished and new ones took their place, so changes kept flowing past
	// what the first ten could take (4 each).
	if k.StreamsClosed < 150 || k.StreamsClosed > 220 || k.ConnectionCycles < k.StreamsClosed*9/10 || k.ConnectionCycles > k.StreamsClosed {
		t.Errorf("%d streams closed, %d reopened; want about 200, nearly all reopened", k.StreamsClosed, k.ConnectionCycles)
	}
	if k.InterviewsCompleted < 2*interviews || k.InterviewsStarted != k.InterviewsCompleted+interviews || s.ChangesMade < 4*int(k.InterviewsCompleted) {
		t.Errorf("%d interviews started, %d completed, %d changes made; want ten renewed twice or more, each with its 4 changes, and ten left at the end",
			k.InterviewsStarted, k.InterviewsCompleted, s.ChangesMade)
	}

	// The samples are there and sensible.
	if len(k.Samples) < 8 || len(k.Samples) > 10 || k.SampleEveryS != 1 {
		t.Errorf("%d samples every %v s; want 8 to 10, every second of a 10 s soak", len(k.Samples), k.SampleEveryS)
	}
	all := append(append([]soakSample{k.Start}, k.Samples...), k.End)
	for i, g := range all {
		if g.RSS < 4<<20 || g.RSS > 1<<30 || g.Goroutines < 2*interviews*subs || g.Goroutines > 5000 || len(g.Nodes) != 1 || g.Nodes[0].RSS != g.RSS {
			t.Errorf("sample %d: RSS %d, %d goroutines, nodes %+v; want a few MiB, at least 2 goroutines per stream, one node", i, g.RSS, g.Goroutines, g.Nodes)
		}
		if i > 0 && g.AtS < all[i-1].AtS {
			t.Errorf("sample %d at %v s, before the one before it (%v s)", i, g.AtS, all[i-1].AtS)
		}
	}
	if k.Start.AtS != 0 || k.End.AtS < 10 || k.End.Open != interviews*subs || k.Samples[len(k.Samples)-1].Cycles == 0 {
		t.Errorf("start at %v s, end at %v s with %d streams open, last sample %+v; want 0, past 10 s with all %d open, cycles counted",
			k.Start.AtS, k.End.AtS, k.End.Open, k.Samples[len(k.Samples)-1], interviews*subs)
	}

	// The drift, and the goroutines back.
	if k.RSSDrift != k.End.RSS-k.Start.RSS || k.GoroutineDrift != k.End.Goroutines-k.Start.Goroutines {
		t.Errorf("drift RSS %d, goroutines %d; want end minus start (%d, %d)", k.RSSDrift, k.GoroutineDrift, k.End.RSS-k.Start.RSS, k.End.Goroutines-k.Start.Goroutines)
	}
	if k.Leak || k.GoroutineDrift > k.GoroutineSlack || k.GoroutineSlack != 50 || k.SettleS > 10 {
		t.Errorf("leak %v: goroutines %+d against a slack of %d, %v s after the churn; want them back within 50, in seconds",
			k.Leak, k.GoroutineDrift, k.GoroutineSlack, k.SettleS)
	}
}

// leakyGateway stands in front of a real gateway and makes its /metrics
// show perStream more goroutines for every stream ever opened through it:
// the leak a soak is there to catch.
func leakyGateway(t *testing.T, gateway string, perStream int64) *httptest.Server {
	t.Helper()
	target, err := url.Parse(gateway)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }, Transport: tr}
	var opened atomic.Int64
	goroutines := regexp.MustCompile(`(?m)^go_goroutines (\d+)$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			opened.Add(1)
		case "/metrics":
			resp, err := (&http.Client{Transport: tr}).Get(gateway + "/metrics")
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = goroutines.ReplaceAllFunc(body, func(m []byte) []byte {
				n, _ := strconv.ParseInt(string(goroutines.FindSubmatch(m)[1]), 10, 64)
				return fmt.Appendf(nil, "go_goroutines %d", n+perStream*opened.Load())
			})
			w.Write(body)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return srv
}

// TestSoakFlagsALeak runs a soak against a gateway that seems to keep five
// goroutines of every stream it ever served: the report must say "leak",
// and the run must fail.
func TestSoakFlagsALeak(t *testing.T) {
	testenv.SkipUnlessLong(t, "a soak against a leaking gateway")
	srv, err := spawnServer(t.Context(), spawnOptions{bin: pushgateBin(t), tmpDir: t.TempDir(), interval: 200 * time.Millisecond, perInterview: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	leaky := leakyGateway(t, srv.Gateway, 5)

	cfg, err := parseFlags([]string{"-json", "-gateway", leaky.URL, "-sim", srv.Sim, "-interviews", "5", "-subscribers-per-interview", "3",
		"-interval", "200ms", "-duration", "3s", "-churn", "20", "-interview-life", "4s", "-timeout", "50s"}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	cfg.progressEach, cfg.settle = 500*time.Millisecond, 2*time.Second
	var out bytes.Buffer
	err = run(t.Context(), cfg, &out, testWriter{t})
	if err == nil || !strings.Contains(err.Error(), "goroutine leak") {
		t.Errorf("run answered %v; want a goroutine leak", err)
	}
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("the -json output is not one JSON object: %v\n%s", err, out.Bytes())
	}
	if s.Soak == nil || !s.Soak.Leak || s.Soak.GoroutineDrift < 5*s.Soak.ConnectionCycles || !strings.Contains(strings.Join(s.Notes, "\n"), "goroutine leak") {
		t.Errorf("soak %+v, notes %q: want the leak flagged, with a drift of 5 goroutines per reopened stream or more", s.Soak, s.Notes)
	}
	if s.EventsMissed != 0 || s.Duplicates != 0 || s.Errors != 0 {
		t.Errorf("missed %d, duplicates %d, errors %d %v; the leak is in the metrics only, delivery must hold", s.EventsMissed, s.Duplicates, s.Errors, s.ErrorsByKind)
	}
}

// TestSoakFlags checks what -churn turns on and refuses.
func TestSoakFlags(t *testing.T) {
	c, err := parseFlags([]string{"-churn", "20", "-duration", "30m"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != 40*time.Minute || c.life != 30*time.Second || c.settle != settleGoroutines || c.spawnArgs() != "-retention 1m " {
		t.Errorf("-churn 20 -duration 30m: timeout %v, life %v, settle %v, spawn args %q; want 40m, 30s, %v and a 1m retention",
			c.timeout, c.life, c.settle, c.spawnArgs(), settleGoroutines)
	}
	if c, _ := parseFlags([]string{"-churn", "20", "-timeout", "45m", "-duration", "30m", "-server-args", "-retention 1h"}, &bytes.Buffer{}); c.timeout != 45*time.Minute || c.spawnArgs() != "-retention 1m -retention 1h" {
		t.Errorf("a given -timeout and -server-args: %v, %q; want them kept, the last -retention winning", c.timeout, c.spawnArgs())
	}
	for _, bad := range [][]string{
		{"-churn", "-1"},
		{"-churn", "5", "-mode", "polling"},
		{"-churn", "5", "-changes", "0"},
		{"-churn", "5", "-interview-life", "10s"}, // half of it under 4 changes x 2 s
		{"-churn", "5", "-ramp", "100"},
		{"-churn", "5", "-duration", "20s", "-timeout", "20s"},
	} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	var usage bytes.Buffer
	parseFlags([]string{"-h"}, &usage)
	for _, f := range []string{"-churn", "-interview-life"} {
		if !strings.Contains(usage.String(), "  "+f+" ") {
			t.Errorf("-h does not document %s", f)
		}
	}
}

// TestGoroutinesBackToStart checks the leak verdict per node.
func TestGoroutinesBackToStart(t *testing.T) {
	sample := func(gs ...int64) soakSample {
		var s soakSample
		for _, g := range gs {
			s.Nodes = append(s.Nodes, nodeGauge{Goroutines: g})
		}
		return s
	}
	for _, tt := range []struct {
		name       string
		start, end soakSample
		back       bool
	}{
		{"the same", sample(3000), sample(3000), true},
		{"fewer", sample(3000), sample(2500), true},
		{"2 % more", sample(3000), sample(3060), true},
		{"past 2 %", sample(3000), sample(3061), false},
		{"50 more of a few", sample(100), sample(150), true},
		{"51 more of a few", sample(100), sample(151), false},
		{"one node of three", sample(3000, 3000, 3000), sample(3000, 3100, 2900), false},
		{"a node gone", sample(3000, 3000), sample(3000), false},
	} {
		if got := backToStart(tt.start, tt.end); got != tt.back {
			t.Errorf("%s: back %v, want %v", tt.name, got, tt.back)
		}
	}
}
