package main

import (
	"context"
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

	"github.com/pushgate/pushgate/upstream/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "pushgate-sim:", err)
		stop()
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pushgate-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address HOST:PORT")
	apiKey := fs.String("api-key", "", "x-api-key the upstream API requires; empty accepts any non-empty key")
	adminToken := fs.String("admin-token", "", "admin token the admin endpoints accept; empty makes them answer 401")
	publicURL := fs.String("public-url", "", "base URL browsers reach the simulator at; empty means http://<request Host>")
	stepDelay := fs.Duration("step-delay", 1500*time.Millisecond, "auto-advance step time of the flow page")
	faults := fs.String("faults", "", `faults to inject from the start, as POST /sim/faults takes them, e.g. {"error_rate":0.1,"status":503}`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	sim := simulator.New(simulator.Config{
		APIKey:     *apiKey,
		AdminToken: *adminToken,
		PublicURL:  *publicURL,
		StepDelay:  *stepDelay,
		Logger:     log,
	})

	if *faults != "" {
		f, err := simulator.ParseFaults(*faults)
		if err != nil {
			return err
		}
		sim.SetFaults(f)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           sim,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// No WriteTimeout: latency and hang faults hold answers on purpose.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "pushgate-sim listening on http://%s\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String(), "admin_endpoints", *adminToken != "")

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		// Hanging requests (the hang fault) end when their connections close.
		log.Warn("shutdown timed out; closing connections", "err", err)
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
