package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// config is everything the command reads from flags and the environment.
type config struct {
	addr          string
	upstreamURL   string
	simAddr       string
	simPublicURL  string
	simFaults     string
	simWebhooks   bool
	flowOrigin    string
	apiKey        string
	flowID        string
	adminToken    string
	secret        string
	tokenTTL      time.Duration
	pollInterval  time.Duration
	linger        time.Duration
	backoffMax    time.Duration
	upstreamCalls int
	upstreamRate  float64
	callTimeout   time.Duration
	heartbeat     time.Duration
	writeTimeout  time.Duration
	secureCookie  bool
	shutdownGrace time.Duration
	drainDelay    time.Duration

	previousSecret      string
	previousSecretGrace time.Duration
	allowedOrigins      string
	frameAncestors      string
	clientIPHeader      string
	sessionsPerMinute   float64
	sessionBurst        int
	maxStreams          int
	maxPerInterview     int
	maxPerClient        int
	readHeaderTimeout   time.Duration
	webhookSecret       string
	webhookSources      string
	pushInterval        time.Duration
	pushSilence         time.Duration
	logLevel            string
	logFormat           string
	redisURL            string
	redisPrefix         string
	leaseTTL            time.Duration
}

// envName is the environment variable read for a flag: PUSHGATE_ and the
// flag name in upper case with dashes as underscores.
func envName(flagName string) string {
	return "PUSHGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags, then fills every flag not given on the command
// line from its environment variable.
func parseConfig(args []string, getenv func(string) string, usageOut io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("pushgate", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.StringVar(&c.addr, "addr", ":8080", "listen address of the gateway (page, API, SSE)")
	fs.StringVar(&c.upstreamURL, "upstream", "", "base URL of the upstream onboarding API, e.g. https://demo-api.incodesmile.com; empty runs the built-in simulator")
	fs.StringVar(&c.simAddr, "sim-addr", "127.0.0.1:8090", "listen address of the built-in simulator (only without -upstream)")
	fs.StringVar(&c.simPublicURL, "sim-public-url", "", "URL browsers reach the simulator at; empty means http://<sim-addr>")
	fs.BoolVar(&c.simWebhooks, "sim-webhooks", true, "the built-in simulator pushes every status change to the gateway's webhook, as the upstream does once configured; false leaves the gateway to polling alone")
	fs.StringVar(&c.simFaults, "sim-faults", "", `faults the built-in simulator injects from the start, as its POST /sim/faults takes them, e.g. {"error_rate":0.2,"status":503}`)
	fs.StringVar(&c.flowOrigin, "flow-origin", "", "origin of the onboarding flow pages the iframe shows (CSP frame-src, Permissions-Policy); empty means the simulator's origin, or the -upstream origin")
	fs.StringVar(&c.apiKey, "api-key", "", "upstream API key (x-api-key); required with -upstream")
	fs.StringVar(&c.flowID, "flow-id", "", "upstream flow (configurationId) sessions start with; required with -upstream")
	fs.StringVar(&c.adminToken, "admin-token", "", "upstream admin token; when set, statuses and scores are read by interview id with it")
	fs.StringVar(&c.secret, "secret", "", "HMAC secret for browser tokens, at least 16 bytes; empty picks a random one (tokens then die with the process)")
	fs.StringVar(&c.previousSecret, "previous-secret", "", "the secret before the last rotation; tokens it signed stay valid for -previous-secret-grace")
	fs.DurationVar(&c.previousSecretGrace, "previous-secret-grace", 0, "how long after start -previous-secret is accepted; 0 means one -token-ttl")
	fs.DurationVar(&c.tokenTTL, "token-ttl", time.Hour, "lifetime of browser tokens")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma-separated origins that may call the API with credentials (CORS); empty allows none")
	fs.StringVar(&c.frameAncestors, "frame-ancestors", "'self'", "CSP frame-ancestors: who may frame the page ('none', 'self', origins)")
	fs.StringVar(&c.clientIPHeader, "client-ip-header", "", "header a trusted reverse proxy sets to the client address (e.g. X-Forwarded-For); empty uses the peer address")
	fs.Float64Var(&c.sessionsPerMinute, "sessions-per-minute", 10, "new upstream sessions (/onboarding-url) allowed per client address per minute; negative turns the limit off")
	fs.IntVar(&c.sessionBurst, "session-burst", 5, "new sessions a client address may start at once")
	fs.IntVar(&c.maxStreams, "max-streams", 0, "cap on open SSE streams on this node; 0 means the connection cap (the open-file limit less 300) less 50; negative means none")
	fs.IntVar(&c.maxPerInterview, "max-streams-per-interview", 16, "cap on open SSE streams of one interview; negative means none")
	fs.IntVar(&c.maxPerClient, "max-streams-per-client", 256, "cap on open SSE streams from one client address; negative means none")
	fs.StringVar(&c.webhookSecret, "webhook-secret", "", "bearer secret of the upstream's webhook calls; turns on POST /webhooks/onboarding-status (with the built-in simulator, a random one is used when empty)")
	fs.StringVar(&c.webhookSources, "webhook-allowed-ips", "", "comma-separated addresses or CIDR ranges webhook calls are taken from; empty takes them from anywhere")
	fs.DurationVar(&c.pushInterval, "push-interval", 15*time.Second, "safety poll interval of an interview whose changes arrive by webhook")
	fs.DurationVar(&c.pushSilence, "push-silence", time.Minute, "after this long without a webhook, an interview is polled at -poll-interval again")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client has to send its request headers (slow clients are cut off)")
	fs.DurationVar(&c.pollInterval, "poll-interval", time.Second, "upstream status poll interval per interview")
	fs.DurationVar(&c.linger, "linger", 10*time.Second, "how long a poller runs after its last subscriber left")
	fs.DurationVar(&c.backoffMax, "backoff-max", 30*time.Second, "cap of the exponential backoff after upstream errors")
	fs.IntVar(&c.upstreamCalls, "max-upstream-calls", 64, "cap on concurrent upstream status calls")
	fs.Float64Var(&c.upstreamRate, "max-upstream-rate", 0, "ceiling on upstream status calls per second across all interviews (outage retries and recoveries stay under it); 0 means none")
	fs.DurationVar(&c.callTimeout, "upstream-timeout", 5*time.Second, "timeout of each upstream call")
	fs.DurationVar(&c.heartbeat, "heartbeat", 15*time.Second, "interval of SSE heartbeat comments")
	fs.DurationVar(&c.writeTimeout, "write-timeout", 10*time.Second, "deadline of each SSE write; slower clients are dropped")
	fs.BoolVar(&c.secureCookie, "secure-cookie", false, "mark the session cookie Secure even without TLS here (behind a TLS proxy)")
	fs.DurationVar(&c.drainDelay, "drain-delay", 0, "on SIGTERM, how long /readyz answers 503 while everything else keeps serving, before streams are ended (give the load balancer time to stop routing here)")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 10*time.Second, "time allowed for a clean shutdown on SIGINT/SIGTERM")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis URL (redis://[user:password@]host:port[/db], rediss:// for TLS) of a cluster of gateway nodes: each interview is then polled by one node and its changes reach every node; empty runs a single node without Redis")
	fs.StringVar(&c.redisPrefix, "redis-prefix", "pushgate", "prefix of the Redis keys and channel, so several gateways can share one Redis")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", 3*time.Second, "with -redis-url, how long a node's poll lease outlives it: a dead node's interviews are taken over within it")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "Usage: pushgate [flags]\n\npushgate pushes onboarding status changes to browsers over Server-Sent Events.\nEvery flag can also be set with its environment variable (shown in brackets); flags win.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(usageOut, "  -%s [%s]\n    \t%s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
		fmt.Fprintf(usageOut, "\n  pushgate -healthcheck URL\n    \texit 0 when URL answers 200 (the container health probe)\n")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && !given[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c config) validate() error {
	if c.upstreamURL != "" && (c.apiKey == "" || c.flowID == "") {
		return errors.New("-upstream needs -api-key and -flow-id")
	}
	if c.secret != "" && len(c.secret) < 16 {
		return errors.New("-secret must be at least 16 bytes")
	}
	if c.previousSecret != "" && (len(c.previousSecret) < 16 || c.secret == "") {
		return errors.New("-previous-secret must be at least 16 bytes and needs -secret")
	}
	if c.sessionBurst <= 0 {
		return errors.New("-session-burst must be positive")
	}
	if c.maxPerInterview == 0 || c.maxPerClient == 0 {
		return errors.New("-max-streams-per-interview and -max-streams-per-client must not be 0 (negative means no cap)")
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return fmt.Errorf("-log-format %q: want text or json", c.logFormat)
	}
	for name, d := range map[string]time.Duration{
		"-token-ttl": c.tokenTTL, "-poll-interval": c.pollInterval, "-backoff-max": c.backoffMax,
		"-upstream-timeout": c.callTimeout, "-heartbeat": c.heartbeat, "-write-timeout": c.writeTimeout,
		"-shutdown-grace": c.shutdownGrace, "-linger": c.linger, "-read-header-timeout": c.readHeaderTimeout,
		"-push-interval": c.pushInterval, "-push-silence": c.pushSilence,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	if c.drainDelay < 0 || c.drainDelay >= c.shutdownGrace {
		return errors.New("-drain-delay must be at least 0 and below -shutdown-grace")
	}
	if c.previousSecretGrace < 0 {
		return errors.New("-previous-secret-grace must not be negative")
	}
	if c.upstreamRate < 0 {
		return errors.New("-max-upstream-rate must not be negative")
	}
	if c.upstreamCalls <= 0 {
		return errors.New("-max-upstream-calls must be positive")
	}
	if c.redisURL != "" {
		switch {
		case c.secret == "":
			return errors.New("-redis-url needs -secret: every node of a cluster must verify the tokens the others issue")
		case c.upstreamURL == "":
			return errors.New("-redis-url needs -upstream: the nodes of a cluster must share one upstream (run pushgate-sim for a simulated one)")
		case c.leaseTTL < 100*time.Millisecond:
			return errors.New("-lease-ttl must be at least 100ms")
		}
	}
	return nil
}
