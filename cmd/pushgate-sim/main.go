package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
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

// parseFlags reads the simulator's Config from the command line, and the
// faults to inject from the start (nil: none).
func parseFlags(args []string, stderr io.Writer) (addr string, faults *simulator.Faults, cfg simulator.Config, err error) {
	fs := flag.NewFlagSet("pushgate-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&addr, "addr", "127.0.0.1:8090", "listen address HOST:PORT")
	fs.StringVar(&cfg.APIKey, "api-key", "", "x-api-key the upstream API requires; empty accepts any non-empty key")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "an admin token the admin endpoints accept forever")
	fs.StringVar(&cfg.AdminEmail, "admin-email", "", "executive email POST /executive/log-in takes; each log-in answers an admin token that expires after -admin-token-ttl")
	fs.StringVar(&cfg.AdminPassword, "admin-password", "", "executive password, with -admin-email")
	fs.DurationVar(&cfg.AdminTokenTTL, "admin-token-ttl", 24*time.Hour, "lifetime of the admin tokens log-ins answer; expired ones get 401")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "base URL browsers reach the simulator at; empty means http://<request Host>")
	fs.DurationVar(&cfg.StepDelay, "step-delay", 1500*time.Millisecond, "auto-advance step time of the flow page")
	fs.StringVar(&cfg.Order, "order", simulator.OrderSteps, "order the flow page sets statuses in: steps (one per step) or incode (the orders Incode's flows send)")
	fs.StringVar(&cfg.WebhookURL, "webhook-url", "", "URL every status change is POSTed to, as the upstream's webhook; empty sends none")
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", "", "static bearer secret of the webhook calls; empty sends no Authorization header (put a secret in -webhook-url's path)")
	fs.StringVar(&cfg.WebhookTokenURL, "webhook-token-url", "", "OAuth 2.0 token URL (client credentials) the webhook calls get their bearer from, as the upstream does with an authentication URL set")
	fs.StringVar(&cfg.WebhookClientID, "webhook-client-id", "", "OAuth 2.0 client id, with -webhook-token-url")
	fs.StringVar(&cfg.WebhookClientSecret, "webhook-client-secret", "", "OAuth 2.0 client secret, with -webhook-token-url")
	var headers headerList
	fs.Var(&headers, "webhook-header", `static custom header of the webhook calls, "Name: value", as Incode's dashboard sets them (Configuration -> Webhooks); may be repeated`)
	fs.Float64Var(&cfg.WebhookRetryScale, "webhook-retry-scale", 1, "multiplies the waits between the retries of a failed webhook call (the upstream's: 5 retries, 30s then x2.5 each, about 32 minutes); 0.001 makes them milliseconds")
	fs.DurationVar(&cfg.FlowTimeout, "flow-timeout", 0, "a session whose flow has not ended (ONBOARDING_FINISHED or a manual review) this long after its start gets status EXPIRED, with its webhook, as the upstream's flow timeout; 0 means none")
	fs.StringVar(&cfg.ControlToken, "control-token", "", "bearer token (Authorization: Bearer <token>, at least 16 bytes) the control API /sim/... takes when -addr is beyond loopback; empty turns the control API off there (on loopback it answers any program: JSON bodies, a loopback Host, no Origin header)")
	faultsJSON := fs.String("faults", "", `faults to inject from the start, as POST /sim/faults takes them, e.g. {"error_rate":0.1,"status":503}`)
	if err = fs.Parse(args); err != nil {
		return
	}
	cfg.WebhookHeaders = http.Header(headers)
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments: %v", fs.Args())
	case simulator.Path(cfg.Order) == nil:
		err = fmt.Errorf("-order %q: want %s or %s", cfg.Order, simulator.OrderSteps, simulator.OrderIncode)
	case (cfg.AdminEmail == "") != (cfg.AdminPassword == ""):
		err = errors.New("-admin-email and -admin-password go together")
	case cfg.ControlToken != "" && len(cfg.ControlToken) < 16:
		err = errors.New("-control-token must be at least 16 bytes")
	case !(cfg.WebhookRetryScale > 0) || math.IsInf(cfg.WebhookRetryScale, 0):
		err = fmt.Errorf("-webhook-retry-scale %v: want a positive number", cfg.WebhookRetryScale)
	case cfg.FlowTimeout < 0:
		err = fmt.Errorf("-flow-timeout %s: want 0 (none) or more", cfg.FlowTimeout)
	case *faultsJSON != "":
		var f simulator.Faults
		f, err = simulator.ParseFaults(*faultsJSON)
		faults = &f
	}
	return
}

// run serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	addr, faults, cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger, cfg.Addr = log, ln.Addr() // the control API judges by where it listens
	sim := simulator.New(cfg)
	defer sim.Close()
	if faults != nil {
		sim.SetFaults(*faults)
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
	log.Info("listening", "addr", ln.Addr().String(), "admin_endpoints", cfg.AdminToken != "" || cfg.AdminEmail != "")
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

// headerList is the repeatable -webhook-header flag: "Name: value" each.
type headerList http.Header

func (h *headerList) String() string {
	var parts []string
	for name, values := range *h {
		for _, v := range values {
			parts = append(parts, name+": "+v)
		}
	}
	return strings.Join(parts, ", ")
}

func (h *headerList) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || value == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("%q: want \"Name: value\"", v)
	}
	if *h == nil {
		*h = headerList{}
	}
	http.Header(*h).Add(name, value)
	return nil
}
