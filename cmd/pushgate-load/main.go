package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == workerFlag {
		os.Exit(workerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushgate-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pushgate-load:", err)
		stop()
		os.Exit(1)
	}
}

// config is everything a run needs; parseFlags fills it.
type config struct {
	gateway      string   // the -gateway flag as given
	gateways     []string // its URLs; nil with -spawn
	sim          string
	simAPIKey    string
	simToken     string // the simulator's control token; "" sends none
	spawn        bool
	pushgateBin  string
	serverArgs   string
	interviews   int
	subscribers  int
	interval     time.Duration
	ramp         float64
	duration     time.Duration
	changes      int
	mode         string
	procs        int // 0: automatic
	sourceIPs    int // 0: automatic
	timeout      time.Duration
	jsonOut      bool
	progressEach time.Duration // stderr progress period; tests shorten it
	churn        float64       // streams closed and reopened per second; above 0 the run is a soak (soak.go)
	life         time.Duration // a soak's mean interview life
	settle       time.Duration // a soak's wait for the goroutines to come back; tests shorten it
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("pushgate-load", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.gateway, "gateway", "http://127.0.0.1:8080", "base URL of a running pushgate, or a comma-separated list of the nodes of a cluster: session i is created at node i mod N, subscriber k of interview i streams from node (i+k) mod N, and the report adds a line per node (ignored with -spawn)")
	fs.StringVar(&c.sim, "sim", "http://127.0.0.1:8090", "base URL of the simulator: control API, /sim/stats, and the upstream API in polling mode (ignored with -spawn)")
	fs.StringVar(&c.simAPIKey, "sim-api-key", "built-in-simulator-key", "x-api-key for POST /omni/start in polling mode; pushgate's built-in simulator wants this default, pushgate-sim without -api-key takes any")
	fs.StringVar(&c.simToken, "sim-control-token", "", "control token of a simulator that listens beyond loopback (pushgate -sim-control-token, PUSHGATE_SIM_CONTROL_TOKEN, pushgate-sim -control-token), sent as Authorization: Bearer on its /sim/... calls; empty sends none (a simulator on loopback needs none)")
	fs.BoolVar(&c.spawn, "spawn", false, "build and start pushgate (with its built-in simulator) on free loopback ports, and stop it at the end")
	fs.StringVar(&c.pushgateBin, "pushgate-bin", "", "with -spawn: run this pushgate binary instead of building ./cmd/pushgate of the current module")
	fs.StringVar(&c.serverArgs, "server-args", "", "with -spawn: extra pushgate flags, space separated, e.g. \"-max-streams 5000\"")
	fs.IntVar(&c.interviews, "interviews", 100, "interviews (sessions) to create")
	fs.IntVar(&c.subscribers, "subscribers-per-interview", 10, "SSE streams (or polling browsers) per interview")
	fs.DurationVar(&c.interval, "interval", time.Second, "server poll interval when spawning, and the browsers' poll interval in polling mode")
	fs.Float64Var(&c.ramp, "ramp", 0, "new connections per second over all workers; 0 = as fast as possible (at most 256 connecting at once per process)")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long to drive changes with every connection open; changes of one interview stay at least 2 intervals apart, so it must be at least changes x 2 x interval")
	fs.IntVar(&c.changes, "changes", len(walk)-1, fmt.Sprintf("status changes per interview along %s (0-%d; %[2]d finishes the flow)", strings.Join(walk, " -> "), len(walk)-1))
	fs.StringVar(&c.mode, "mode", "sse", "sse (streams from the gateway) or polling (each browser polls a pass-through backend run here, one upstream call per poll, as in the integration guide)")
	fs.IntVar(&c.procs, "procs", 0, "worker processes holding the connections; 0 = automatic (as few as the open-file limit allows; 1 = all in this process)")
	fs.IntVar(&c.sourceIPs, "source-ips", 0, "spread client connections over source addresses 127.0.0.1..127.0.0.N; 0 = automatic (one per 20,000 connections)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "hard stop of the whole run")
	fs.BoolVar(&c.jsonOut, "json", false, "print one JSON object on stdout instead of the summary table")
	soakFlags(fs, &c)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: pushgate-load [flags]\n\nLoad-tests pushgate: many concurrent SSE streams (or polling browsers) over loopback,\nstatus changes driven through the simulator, and a report of delivery, latency,\nupstream calls and memory. It always stops by itself (-timeout).\n\nAgainst a cluster, give every node to -gateway and the shared simulator to -sim:\n  pushgate-load -gateway http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 -sim http://127.0.0.1:8090 -subscribers-per-interview 3\n\nA soak: 30 minutes of streams closing and reopening and interviews finishing and\nstarting, with the gateway's RSS and goroutines at the start, every minute and\nafter the churn, and exit status 1 if its goroutines do not come back:\n  pushgate-load -spawn -duration 30m -churn 20 -interviews 300 -subscribers-per-interview 3\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.progressEach = time.Second
	c.soakDefaults(fs)
	if !c.spawn {
		var err error
		if c.gateways, err = splitGateways(c.gateway); err != nil {
			return c, err
		}
	}
	return c, c.validate()
}

// splitGateways reads -gateway: one base URL, or a comma-separated list.
// The connections are raw HTTP/1.1 over TCP, so only http:// URLs work.
func splitGateways(list string) ([]string, error) {
	var out []string
	for g := range strings.SplitSeq(list, ",") {
		g = strings.TrimRight(strings.TrimSpace(g), "/")
		u, err := url.Parse(g)
		switch {
		case g == "":
			return nil, fmt.Errorf("-gateway %q: an empty URL in the list", list)
		case err != nil:
			return nil, fmt.Errorf("-gateway %q: %w", list, err)
		case u.Scheme != "http" || u.Host == "":
			return nil, fmt.Errorf("-gateway %q: %q is not http://host:port (the streams are plain HTTP/1.1)", list, g)
		}
		out = append(out, g)
	}
	return out, nil
}

func (c config) validate() error {
	switch {
	case c.mode != "sse" && c.mode != "polling":
		return fmt.Errorf("-mode %q: want sse or polling", c.mode)
	case c.interviews <= 0 || c.subscribers <= 0:
		return errors.New("-interviews and -subscribers-per-interview must be positive")
	case c.changes < 0 || c.changes > len(walk)-1:
		return fmt.Errorf("-changes %d: want 0 to %d", c.changes, len(walk)-1)
	case c.interval <= 0 || c.duration <= 0 || c.timeout <= 0:
		return errors.New("-interval, -duration and -timeout must be positive")
	case c.ramp < 0 || c.procs < 0 || c.sourceIPs < 0 || c.sourceIPs > 254:
		return errors.New("-ramp and -procs must not be negative; -source-ips is 0 to 254")
	case c.changes > 0 && c.duration < time.Duration(c.changes)*minChangeGap(c.interval):
		return fmt.Errorf("-duration %v is too short for %d changes %v apart (2 poll intervals, so no change hides another): use at least %v",
			c.duration, c.changes, minChangeGap(c.interval), time.Duration(c.changes)*minChangeGap(c.interval))
	}
	return c.validateSoak()
}
