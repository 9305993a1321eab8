package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-healthcheck" {
		os.Exit(healthcheck(os.Args[2]))
	}
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushgate:", err)
		os.Exit(2)
	}
	if cfg.version {
		fmt.Println(versionLine(cfg.gw.Build))
		return
	}
	log := newLogger(cfg, os.Stderr)
	log.Info("pushgate starting", "version", cfg.gw.Build.Version, "revision", cfg.gw.Build.Revision, "go", cfg.gw.Build.GoVersion)
	// Process-wide settings: the Redis client's own messages go to the log,
	// and the open-file limit is raised to its hard value (the caps follow
	// it, see capacity).
	redis.SetLogger(redisLog{log})
	if cfg.fileLimit, err = raiseFileLimit(); err != nil {
		log.Warn("cannot raise the open-file limit", "err", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log, nil); err != nil {
		log.Error("pushgate stopped", "err", err)
		os.Exit(1)
	}
}

// run builds the gateway and serves until ctx ends, then shuts down within
// the grace period. ls may be nil: run then listens on the configured
// addresses. With -metrics-addr, run binds it unless ls has a Metrics
// listener.
func run(ctx context.Context, cfg config, log *slog.Logger, ls *gateway.Listeners) error {
	if ls == nil {
		simAddr := cfg.simAddr
		if cfg.gw.Upstream.BaseURL != "" {
			simAddr = "" // no built-in simulator
		}
		bound, err := gateway.Listen(cfg.addr, simAddr)
		if err != nil {
			return err
		}
		ls = &bound
	}
	if cfg.metricsAddr != "" && ls.Metrics == nil {
		bound := *ls
		var err error
		if bound.Metrics, err = net.Listen("tcp", cfg.metricsAddr); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		ls = &bound
	}
	cfg.gw.Logger = log
	cfg.gw.MaxConnections, cfg.gw.Broker.MaxStreams = capacity(cfg.maxStreams, cfg.fileLimit, log)
	g, err := gateway.New(cfg.gw, *ls)
	if err != nil {
		return err
	}
	if g.Simulator != nil {
		fmt.Fprint(os.Stderr, banner(g.URL, cfg.gw.HTTP.BackendSessionsOnly))
	}
	return g.Serve(ctx)
}

// banner tells someone who ran the command with the built-in simulator
// where to go: the demo page, or, when only a backend may start sessions,
// the server API.
func banner(base string, backendOnly bool) string {
	if backendOnly {
		return "\n  pushgate is running with the built-in simulator.\n" +
			"  Sessions start from your backend: POST " + base + "/v1/sessions with \"Authorization: Bearer <-api-token>\"\n" +
			"  (docs/api.md#server-api); the demo page at " + base + "/ cannot start one.\n\n"
	}
	return "\n  pushgate is running with the built-in simulator.\n  Open " + base + "/ in a browser.\n\n"
}

// healthcheck is the container health probe (distroless images have no
// curl): it exits 0 when url answers 200. It probes its own container, so
// an https:// url (the gateway with -tls-cert) is not checked against the
// certificate's names, which rarely cover 127.0.0.1.
func healthcheck(url string) int {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the container's own listener
	}}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		return 1
	}
	return 0
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// fileReserve is how many open files a node keeps for other things than
// client connections: listeners, upstream calls, and with the built-in
// simulator both ends of those calls.
const fileReserve = 300

// capacity derives the caps from the open-file limit (files; 0 when
// unknown): the gateway's open connections (0: none), and the open streams
// (maxStreams when set; negative means none).
func capacity(maxStreams int, files uint64, log *slog.Logger) (conns, streams int) {
	if files <= 2*fileReserve {
		if files > 0 {
			log.Warn("the open-file limit is too low to derive the caps from", "limit", files)
		}
		if maxStreams == 0 {
			maxStreams = 10000
		}
		return 0, maxStreams
	}
	conns = int(min(files, 1<<20)) - fileReserve // an unlimited limit is not a cap to derive from
	switch {
	case maxStreams == 0:
		maxStreams = conns - 50 // room for requests beside the streams
	case maxStreams > conns:
		log.Warn("-max-streams is above the connection cap; the connection cap holds", "max_streams", maxStreams, "max_connections", conns)
	}
	log.Info("capacity", "open_file_limit", files, "max_connections", conns, "max_streams", maxStreams)
	return conns, maxStreams
}

// redisLog sends the Redis client's own messages (each failed reconnect) to
// the log at debug level: the cluster node reports an outage once, at warn.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}
