package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxConnecting bounds connections being set up at once in one worker, so
// that "as fast as possible" does not overflow the server's accept backlog
// (a full backlog drops SYNs, which then look like slow connects).
const maxConnecting = 256

// assignment is the work of one worker: the connections it holds. It
// travels as JSON to -worker child processes.
type assignment struct {
	Mode       string        `json:"mode"`
	Gateways   []string      `json:"gateways"`         // base URLs of the gateway nodes (mode sse)
	Sim        string        `json:"sim"`              // simulator base URL: the upstream of the polling backend
	Interviews []assigned    `json:"interviews"`       // a subscriber range of each
	SourceIPs  int           `json:"source_ips"`       // spread over 127.0.0.1..127.0.0.SourceIPs
	Rate       float64       `json:"rate"`             // new connections per second; 0 = unpaced
	Interval   time.Duration `json:"interval"`         // poll interval of a polling browser
	Changes    int           `json:"changes"`          // a subscriber is settled once it saw walk[Changes]
	Deadline   int64         `json:"deadline_unix_ns"` // hard stop, whatever the parent does
	Soak       *soakPlan     `json:"soak,omitempty"`   // a soak: whole interviews, churned (soakworker.go)
}

// assigned is a range of subscribers of one interview.
type assigned struct {
	Index     int    `json:"index"`      // the interview's index in the run (keys change times)
	ID        string `json:"id"`         // interview id
	Token     string `json:"token"`      // gateway token (sse) or upstream session token (polling)
	Subs      int    `json:"subs"`       // subscribers in this range
	FirstConn int    `json:"first_conn"` // run-wide index of the first one (picks its source address)
	FirstSub  int    `json:"first_sub"`  // its index among the interview's subscribers (picks its node)
}

// progress is a worker's counters, reported about four times a second.
type progress struct {
	Attempted int64         `json:"attempted"`      // connections tried
	Open      int64         `json:"open"`           // connections open now
	Failed    int64         `json:"failed"`         // connections that could not be opened
	Events    int64         `json:"events"`         // statuses received
	Settled   int64         `json:"settled"`        // subscribers that saw the last status driven
	Errors    int64         `json:"errors"`         // every error, connect errors included
	Ready     bool          `json:"ready"`          // every connection attempt has been resolved
	Soak      *soakProgress `json:"soak,omitempty"` // a soak's cycles and phase
}

// workerResult is what a worker hands back at the end.
type workerResult struct {
	Subs         []subReport    `json:"subs"`           // connected subscribers only
	Errors       map[string]int `json:"errors"`         // by phase and kind
	NodeErrors   []int          `json:"node_errors"`    // errors by gateway node (index in Gateways)
	NodeFailed   []int          `json:"node_failed"`    // connections that could not be opened, by node
	Refused      int            `json:"refused"`        // connect answers 429/503
	Attempted    int            `json:"attempted"`      // connection attempts
	Connected    int            `json:"connected"`      // connections established
	FirstTry     int64          `json:"first_try"`      // Unix ns of the first attempt
	LastOpen     int64          `json:"last_open"`      // Unix ns of the last connection established
	RSSBase      int64          `json:"rss_base"`       // this process before connecting
	RSSPeak      int64          `json:"rss_peak"`       // this process with every connection open
	Polls        int64          `json:"polls"`          // polls sent (polling mode)
	BackendCalls int64          `json:"backend_calls"`  // upstream calls of the polling backend
	Soak         *soakResult    `json:"soak,omitempty"` // a soak's delivery tally and cycles; Subs is then empty
}

// slot is one subscriber. Its goroutine alone touches it until the worker's
// WaitGroup is done.
type slot struct {
	report    subReport
	connected bool
}

func (s *slot) sawFinish() bool {
	n := len(s.report.Receipts)
	return n > 0 && s.report.Receipts[n-1].Status == len(walk)-1
}

// worker holds the connections of one assignment.
type worker struct {
	a     assignment
	hosts []string // host:port of each node: what the connections dial, and their Host header
	slots []slot
	sem   chan struct{} // connections being set up
	wg    sync.WaitGroup

	attempted, open, failed, events, settled, errCount, polls atomic.Int64
	firstTry, lastOpen                                        atomic.Int64
	ready                                                     atomic.Bool // launch resolved every attempt

	mu         sync.Mutex // protects errs, refused, nodeErrs, nodeFailed
	errs       map[string]int
	refused    int
	nodeErrs   []int
	nodeFailed []int
}

// runWorker opens the assigned connections, reports progress, and on the
// end of ctx (the parent's stop) or the deadline closes them and returns
// what they saw. Only a soak reads signals.
func runWorker(ctx context.Context, a assignment, signals <-chan workerSignal, report func(progress)) (workerResult, error) {
	ctx, cancel := context.WithDeadline(ctx, time.Unix(0, a.Deadline))
	defer cancel()
	if a.Soak != nil {
		return runSoak(ctx, a, signals, report)
	}
	w := &worker{a: a, sem: make(chan struct{}, maxConnecting), errs: map[string]int{}}
	base, _ := procRSS("self")
	targets := a.Gateways
	var backendCalls func() int64
	if a.Mode == "polling" {
		b, err := startBackend(a.Sim, a.Interviews)
		if err != nil {
			return workerResult{}, err
		}
		defer b.Close()
		targets, backendCalls = []string{b.URL()}, b.calls.Load
	}
	if len(targets) == 0 {
		return workerResult{}, errors.New("no gateway to connect to")
	}
	for _, t := range targets {
		u, err := url.Parse(t)
		if err != nil {
			return workerResult{}, err
		}
		w.hosts = append(w.hosts, u.Host)
	}
	w.nodeErrs, w.nodeFailed = make([]int, len(w.hosts)), make([]int, len(w.hosts))
	stopReports := w.reportEvery(250*time.Millisecond, report)
	w.launch(ctx)
	peak, _ := procRSS("self")
	w.wg.Wait()
	stopReports()
	res := w.result(base, peak)
	if backendCalls != nil {
		res.BackendCalls = backendCalls()
	}
	return res, nil
}

// launch starts one goroutine per connection, paced by the rate, and
// returns once every attempt has been resolved, so that the caller can
// take the memory peak with everything open.
func (w *worker) launch(ctx context.Context) {
	total := 0
	for _, iv := range w.a.Interviews {
		total += iv.Subs
	}
	w.slots = make([]slot, total)
	start, n := time.Now(), 0
	for _, iv := range w.a.Interviews {
		for j := range iv.Subs {
			if !w.pace(ctx, start, n) {
				return
			}
			sl := &w.slots[n]
			sl.report.Interview = iv.Index
			sl.report.Node = w.nodeOf(iv, j)
			w.wg.Go(func() { w.serve(ctx, sl, iv, iv.FirstConn+j) })
			n++
		}
	}
	for range maxConnecting { // all tokens back: no attempt in flight
		w.sem <- struct{}{}
	}
	w.ready.Store(true)
}

// nodeOf is the node subscriber j of the range iv connects to: subscriber
// k of interview i goes to node (i+k) mod N, so that an interview's
// subscribers sit on different nodes, and subscriber 0 on the node that
// created the session (i mod N).
func (w *worker) nodeOf(iv assigned, j int) int {
	return (iv.Index + iv.FirstSub + j) % len(w.hosts)
}

// pace waits for connection n's turn and a free connecting token.
func (w *worker) pace(ctx context.Context, start time.Time, n int) bool {
	if w.a.Rate > 0 {
		at := start.Add(time.Duration(float64(n) / w.a.Rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
			}
		}
	}
	select {
	case <-ctx.Done():
		return false
	case w.sem <- struct{}{}:
		return true
	}
}

func (w *worker) serve(ctx context.Context, sl *slot, iv assigned, conn int) {
	if w.a.Mode == "polling" {
		w.browse(ctx, sl, iv, conn)
		return
	}
	w.stream(ctx, sl, iv, conn)
}

// connect opens connection conn with req as its first request and gives
// back the connecting token whatever happens.
func (w *worker) connect(ctx context.Context, sl *slot, conn int, req []byte) (net.Conn, *bufio.Reader, *http.Response, error) {
	defer func() { <-w.sem }()
	now := time.Now().UnixNano()
	w.firstTry.CompareAndSwap(0, now)
	w.attempted.Add(1)
	c, br, resp, err := dial(ctx, w.hosts[sl.report.Node], conn, w.a.SourceIPs, req)
	if err != nil {
		w.failed.Add(1)
		w.mu.Lock()
		w.nodeFailed[sl.report.Node]++
		w.mu.Unlock()
		if ctx.Err() == nil {
			w.fail(sl, "connect", err)
		}
		return nil, nil, nil, err
	}
	sl.connected = true
	w.open.Add(1)
	w.lastOpen.Store(time.Now().UnixNano())
	return c, br, resp, nil
}

// record appends a receipt; the slot's goroutine is the only caller.
func (w *worker) record(sl *slot, r receipt) {
	sl.report.Receipts = append(sl.report.Receipts, r)
	w.events.Add(1)
	if r.Status == w.a.Changes {
		w.settled.Add(1)
	}
}

// fail counts an error of subscriber sl by phase, kind and node.
func (w *worker) fail(sl *slot, phase string, err error) {
	w.errCount.Add(1)
	var he *httpStatusError
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs[phase+": "+errorKind(err)]++
	w.nodeErrs[sl.report.Node]++
	if phase == "connect" && errors.As(err, &he) && he.refused() {
		w.refused++
	}
}

// errorKind names an error without the addresses and ports that would make
// every occurrence unique.
func errorKind(err error) string {
	var he *httpStatusError
	var ne net.Error
	switch {
	case errors.As(err, &he):
		return he.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens, or the accept backlog is full)"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "no free source port: raise -source-ips"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files in the generator: raise -procs"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset by the server"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "server closed the connection"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Sprintf("%s: %v", oe.Op, oe.Err)
	}
	return err.Error()
}

func (w *worker) snapshot() progress {
	return progress{
		Attempted: w.attempted.Load(), Open: w.open.Load(), Failed: w.failed.Load(),
		Events: w.events.Load(), Settled: w.settled.Load(), Errors: w.errCount.Load(), Ready: w.ready.Load(),
	}
}

// reportEvery calls report with a snapshot every period, and once more when
// stopped; the returned func stops it and waits.
func (w *worker) reportEvery(period time.Duration, report func(progress)) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				report(w.snapshot())
				return
			case <-t.C:
				report(w.snapshot())
			}
		}
	}()
	return func() { close(done); <-exited }
}

func (w *worker) result(base, peak int64) workerResult {
	res := workerResult{
		Errors: w.errs, NodeErrors: w.nodeErrs, NodeFailed: w.nodeFailed, Refused: w.refused, Attempted: int(w.attempted.Load()),
		FirstTry: w.firstTry.Load(), LastOpen: w.lastOpen.Load(),
		RSSBase: base, RSSPeak: peak, Polls: w.polls.Load(),
	}
	for _, sl := range w.slots {
		if sl.connected {
			res.Subs = append(res.Subs, sl.report)
		}
	}
	res.Connected = len(res.Subs)
	return res
}
