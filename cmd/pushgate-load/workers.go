package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// workerFlag is the hidden flag that makes the binary a worker: the parent
// re-executes itself with it when one process cannot hold every connection
// within its open-file limit.
const workerFlag = "-worker"

// fileReserve is kept free of connections in every process: the driver,
// session and stats clients, the spawned server's pipes, stdio, the runtime.
const fileReserve = 200

// workerMessage is one JSON line a worker child writes on stdout.
type workerMessage struct {
	Progress *progress     `json:"progress,omitempty"`
	Result   *workerResult `json:"result,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// workerMain runs a -worker child: the assignment arrives as the first JSON
// value on stdin, soak phase signals as the later ones; the end of stdin
// means stop (the parent closed it, or died). Progress and then the result
// go to stdout, one JSON line each.
func workerMain(stdin io.Reader, stdout, stderr io.Writer) int {
	raiseFileLimit()
	dec := json.NewDecoder(stdin)
	var a assignment
	if err := dec.Decode(&a); err != nil {
		fmt.Fprintln(stderr, "pushgate-load worker: reading the assignment:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan workerSignal, signalBuffer)
	go func() { // later values are signals; the end of stdin stops the process's work
		defer cancel()
		for {
			var s workerSignal
			if err := dec.Decode(&s); err != nil {
				return
			}
			select { // never blocks: a full buffer would keep the end of stdin unseen
			case signals <- s:
			default:
			}
		}
	}()
	var mu sync.Mutex // serializes lines on stdout
	enc := json.NewEncoder(stdout)
	send := func(m workerMessage) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	res, err := runWorker(ctx, a, signals, func(p progress) { send(workerMessage{Progress: &p}) })
	if err != nil {
		send(workerMessage{Error: err.Error()})
		return 1
	}
	send(workerMessage{Result: &res})
	return 0
}

// fleet runs the workers of a run, in this process or as children, and
// keeps their latest progress.
type fleet struct {
	mu       sync.Mutex // protects progress, results, errs
	progress []progress
	results  []workerResult
	errs     []error

	stop   func()             // asks every worker to close its connections and report
	signal func(workerSignal) // moves every worker to a soak phase; before stop only
	wg     sync.WaitGroup     // one per worker
}

// signalBuffer holds the signals a worker has not read yet; a run sends
// at most two (soak phases).
const signalBuffer = 4

// startFleet starts one worker per assignment: in this process when there
// is one, else as -worker children of this same binary.
func startFleet(ctx context.Context, as []assignment, stderr io.Writer) (*fleet, error) {
	f := &fleet{progress: make([]progress, len(as)), results: make([]workerResult, len(as))}
	if len(as) == 1 {
		wctx, cancel := context.WithCancel(ctx)
		signals := make(chan workerSignal, signalBuffer)
		f.stop = cancel
		f.signal = func(s workerSignal) {
			select {
			case signals <- s:
			default:
			}
		}
		f.wg.Go(func() {
			res, err := runWorker(wctx, as[0], signals, func(p progress) { f.setProgress(0, p) })
			f.finish(0, res, err)
		})
		return f, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var stdins []io.WriteCloser
	f.stop = func() {
		for _, in := range stdins {
			in.Close()
		}
	}
	f.signal = func(s workerSignal) {
		for _, in := range stdins {
			_ = json.NewEncoder(in).Encode(s) // a dead child's error shows at its result
		}
	}
	for i, a := range as {
		in, err := f.startChild(ctx, i, exe, a, stderr)
		if err != nil {
			f.stop()
			f.wg.Wait()
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		stdins = append(stdins, in)
	}
	return f, nil
}

// startChild starts worker i and a goroutine that reads its messages until
// it exits. The child dies with this process (Pdeathsig) and on its own
// deadline, so it can never outlive the run.
func (f *fleet) startChild(ctx context.Context, i int, exe string, a assignment, stderr io.Writer) (io.WriteCloser, error) {
	cmd := exec.Command(exe, workerFlag)
	cmd.Stderr = stderr
	dieWithParent(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := json.NewEncoder(stdin).Encode(a); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	f.wg.Go(func() {
		got, reported := f.readChild(i, stdout)
		exit := cmd.Wait()
		switch {
		case reported != nil:
			f.finish(i, workerResult{}, reported)
		case !got && exit != nil:
			f.finish(i, workerResult{}, fmt.Errorf("exited without a result: %w", exit))
		case !got:
			f.finish(i, workerResult{}, errors.New("exited without a result"))
		}
	})
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
	return childStdin{stdin, stop}, nil
}

// childStdin is a worker child's stdin: signals are written to it, and
// closing it stops the child.
type childStdin struct {
	io.WriteCloser
	stopKill func() bool // the kill at the end of the run's context
}

func (c childStdin) Close() error {
	c.stopKill()
	return c.WriteCloser.Close()
}

// readChild decodes messages until EOF; got tells whether a result came,
// reported is the error the worker reported instead.
func (f *fleet) readChild(i int, stdout io.Reader) (got bool, reported error) {
	dec := json.NewDecoder(stdout)
	for {
		var m workerMessage
		if err := dec.Decode(&m); err != nil {
			return false, nil
		}
		switch {
		case m.Progress != nil:
			f.setProgress(i, *m.Progress)
		case m.Result != nil:
			f.finish(i, *m.Result, nil)
			return true, nil
		case m.Error != "":
			return false, errors.New(m.Error)
		}
	}
}

func (f *fleet) setProgress(i int, p progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.progress[i] = p
}

func (f *fleet) finish(i int, r workerResult, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("worker %d: %w", i, err))
		return
	}
	f.results[i] = r
}

// total sums the latest progress of every worker; ready is true once all
// are ready; failed is the first worker error so far.
func (f *fleet) total() (sum progress, ready bool, failed error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ready = true
	for _, p := range f.progress {
		sum.Attempted += p.Attempted
		sum.Open += p.Open
		sum.Failed += p.Failed
		sum.Events += p.Events
		sum.Settled += p.Settled
		sum.Errors += p.Errors
		ready = ready && p.Ready
	}
	return sum, ready, errors.Join(f.errs...)
}

// wait stops the workers and collects their results; past grace it gives up
// on them (their children are killed with the context).
func (f *fleet) wait(grace time.Duration) ([]workerResult, error) {
	f.stop()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		return nil, fmt.Errorf("workers did not report within %v of the stop", grace)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.results, errors.Join(f.errs...)
}
