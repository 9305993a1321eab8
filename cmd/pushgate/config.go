package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/sse"
)

// config is everything the command reads from flags and the environment:
// the gateway's Config, and what only the command uses.
type config struct {
	gw             gateway.Config
	addr           string
	simAddr        string
	metricsAddr    string        // "": /metrics on addr
	maxStreams     int           // 0: derived from the open-file limit (see capacity)
	fileLimit      uint64        // the open-file limit main raised; 0 when unknown
	allowedOrigins string        // comma-separated; into gw.HTTP.AllowedOrigins
	flowOrigins    string        // comma-separated, or "*"; into gw.FlowOrigins
	permissions    string        // comma-separated; into gw.HTTP.IframePermissions
	languages      string        // comma-separated; into gw.HTTP.Languages
	flowIDs        string        // comma-separated; into gw.HTTP.Flows
	webhookSources string        // comma-separated; into gw.HTTP.WebhookSources
	webhookHeader  string        // "Name: value"; into gw.HTTP.WebhookHeaderName and -Value
	relayURLs      listFlag      // into gw.Relay.URLs
	relaySecrets   listFlag      // into gw.Relay.Secrets
	relayEvents    string        // comma-separated; into gw.Relay.Kinds
	apiTokens      string        // comma-separated; into gw.HTTP.APITokens
	publicSessions bool          // into gw.HTTP.BackendSessionsOnly, negated
	trustedProxies string        // comma-separated; into gw.HTTP.TrustedProxies
	previousUntil  string        // RFC 3339; into gw.PreviousSecretUntil
	previousGrace  time.Duration // refused: see -previous-secret-until
	tlsCert        string        // PEM file; with tlsKey into gw.TLS
	tlsKey         string
	tlsMinVersion  string // "1.2" or "1.3"; into gw.TLS.MinVersion
	logLevel       string
	logFormat      string
	version        bool // -version: print the build and exit
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
	c.define(fs)
	fs.Usage = func() { usage(fs, usageOut) }
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.gw.Build = build()
	if c.version {
		return c, nil
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" {
			return // PUSHGATE_VERSION is too common a name to act on
		}
		if v := getenv(envName(f.Name)); v != "" && !given[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	for _, name := range secretFlags {
		if err := setFromFile(fs, name, given[name] || getenv(envName(name)) != "", getenv); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.finish()
}

// define declares every flag of the command.
func (c *config) define(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&c.addr, "addr", ":8080", "listen address of the gateway (page, API, SSE)")
	fs.StringVar(&g.Upstream.BaseURL, "upstream", "", "base URL of the upstream onboarding API, e.g. https://demo-api.incodesmile.com; empty runs the built-in simulator")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "listen address of an internal listener serving /metrics, /healthz and /readyz (e.g. 127.0.0.1:9090, or a private interface); when set, -addr answers /metrics 404 and still serves /healthz and /readyz; empty serves /metrics on -addr")
	fs.StringVar(&c.simAddr, "sim-addr", "127.0.0.1:8090", "listen address of the built-in simulator (only without -upstream)")
	fs.StringVar(&g.Simulator.PublicURL, "sim-public-url", "", "URL browsers reach the simulator at; empty means http://<sim-addr>")
	fs.BoolVar(&g.Simulator.Webhooks, "sim-webhooks", true, "the built-in simulator pushes every status change to the gateway's webhook, as the upstream does once configured; false leaves the gateway to polling alone")
	fs.StringVar(&g.Simulator.ControlToken, "sim-control-token", "", "bearer token (Authorization: Bearer <token>, at least 16 bytes) the built-in simulator's control API /sim/... takes when -sim-addr is beyond loopback; empty turns the control API off there (on loopback it answers any program: JSON bodies, a loopback Host, no Origin header)")
	fs.StringVar(&g.Simulator.Faults, "sim-faults", "", `faults the built-in simulator injects from the start, as its POST /sim/faults takes them, e.g. {"error_rate":0.2,"status":503}`)
	fs.StringVar(&c.flowOrigins, "flow-origin", "", "comma-separated origins of the onboarding flow pages the iframe shows (CSP frame-src, Permissions-Policy, the iframe's allow), or * alone for any page (the camera and the rest then go to whatever page the iframe shows); empty means the simulator's origin, or the -upstream origin")
	fs.StringVar(&g.Upstream.APIKey, "api-key", "", "upstream API key (x-api-key), sent on every upstream call; required with -upstream")
	fs.StringVar(&c.flowIDs, "flow-id", "", "comma-separated upstream flows (configurationIds) sessions start in: the first is the default, which the page's sessions run, and POST /v1/sessions may name any of them; required with -upstream; empty with the built-in simulator means pushgate-sim-flow")
	fs.StringVar(&g.Upstream.AdminToken, "admin-token", "", "upstream admin token, renewed by whoever sets it (they expire after 24 h); when set, statuses and scores are read by interview id with it")
	fs.StringVar(&g.Upstream.AdminEmail, "admin-email", "", "upstream executive (admin) email; with -admin-password, pushgate logs in by itself (POST /executive/log-in), renews its admin token before it expires, and reads statuses and scores by interview id")
	fs.StringVar(&g.Upstream.AdminPassword, "admin-password", "", "upstream executive (admin) password, with -admin-email")
	fs.DurationVar(&g.Upstream.AdminTokenTTL, "admin-token-ttl", 24*time.Hour, "lifetime of the admin tokens a log-in gives (the upstream's is 24 h); renewed after three quarters of it")
	fs.StringVar(&g.Secret, "secret", "", "HMAC secret for browser tokens, at least 16 bytes; empty picks a random one (tokens then die with the process)")
	fs.StringVar(&g.PreviousSecret, "previous-secret", "", "the secret before the last rotation; tokens it signed stay valid until -previous-secret-until, and session tokens it sealed in Redis still open")
	fs.StringVar(&c.previousUntil, "previous-secret-until", "", "when tokens signed with -previous-secret stop verifying, as an RFC 3339 time (e.g. 2026-12-31T00:00:00Z): an absolute end, which a restart never extends; required with -previous-secret; set it one -token-ttl after the rotation")
	fs.DurationVar(&c.previousGrace, "previous-secret-grace", 0, "replaced by -previous-secret-until (a grace counted from start grew with every restart)")
	fs.DurationVar(&g.TokenTTL, "token-ttl", time.Hour, "lifetime of browser tokens")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma-separated origins that may call the API with credentials (CORS); empty allows none")
	fs.StringVar(&g.HTTP.FrameAncestors, "frame-ancestors", "'self'", "CSP frame-ancestors: who may frame the page ('none', 'self', origins)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDR ranges of the reverse proxies in front: only from them are Forwarded, X-Forwarded-For (or -client-ip-header) and X-Forwarded-Proto believed; empty believes none")
	fs.StringVar(&g.HTTP.ClientIPHeader, "client-ip-header", "", "header the -trusted-proxies set to the client address chain when they send no Forwarded header; empty means X-Forwarded-For")
	fs.Float64Var(&g.HTTP.SessionsPerMinute, "sessions-per-minute", 10, "new upstream sessions (/onboarding-url) allowed per client address per minute; negative turns the limit off")
	fs.IntVar(&g.HTTP.SessionBurst, "session-burst", 5, "new sessions a client address may start at once")
	fs.Float64Var(&g.HTTP.NodeSessionsPerMinute, "max-sessions-per-minute", 600, "new upstream sessions (/onboarding-url) this node starts per minute from all addresses together; negative turns the ceiling off")
	fs.IntVar(&g.HTTP.NodeSessionBurst, "max-session-burst", 100, "new sessions this node may start at once, from all addresses together")
	fs.Float64Var(&g.HTTP.ScoreReadsPerMinute, "score-reads-per-minute", 30, "/fetch-score reads allowed per browser token per minute (the score is kept once read, so reads cost no upstream call); negative turns the limit off")
	fs.IntVar(&g.HTTP.ScoreBurst, "score-burst", 10, "/fetch-score reads a browser token may make at once")
	fs.BoolVar(&c.publicSessions, "public-sessions", true, "anyone who reaches /onboarding-url may start a (paid) upstream session, as the demo page does; set false in production, so only your backend starts sessions (POST /v1/sessions)")
	fs.StringVar(&c.apiTokens, "api-token", "", "comma-separated API tokens of the server API under /v1 (Authorization: Bearer), each at least 16 bytes; several allow rotation; empty turns the server API off")
	fs.Float64Var(&g.HTTP.APIRequestsPerMinute, "api-requests-per-minute", 1200, "server API requests allowed per API token per minute; negative turns the ceiling off")
	fs.IntVar(&g.HTTP.APIBurst, "api-burst", 100, "server API requests an API token may make at once")
	fs.IntVar(&c.maxStreams, "max-streams", 0, "cap on open SSE streams on this node; 0 means the connection cap (the open-file limit less 300) less 50; negative means none")
	fs.IntVar(&g.Broker.MaxPerInterview, "max-streams-per-interview", 16, "cap on open SSE streams of one interview; negative means none")
	fs.IntVar(&g.Broker.MaxPerClient, "max-streams-per-client", 256, "cap on open SSE streams from one client address; negative means none")
	fs.StringVar(&g.HTTP.WebhookSecret, "webhook-secret", "", "secret of the upstream's webhook calls, at least 32 bytes (openssl rand -hex 32): a static bearer on POST /webhooks/onboarding-status, or in the path of POST /webhooks/onboarding-status/<secret> (with the built-in simulator, a random one is used when empty)")
	fs.StringVar(&g.HTTP.WebhookClientID, "webhook-client-id", "", "OAuth 2.0 client id the upstream gets webhook access tokens with (POST /webhooks/token); set it, -webhook-client-secret and the authentication URL https://<gateway>/webhooks/token in the upstream's dashboard")
	fs.StringVar(&g.HTTP.WebhookClientSecret, "webhook-client-secret", "", "OAuth 2.0 client secret, with -webhook-client-id; at least 32 bytes (openssl rand -hex 32)")
	fs.DurationVar(&g.HTTP.WebhookTokenTTL, "webhook-token-ttl", time.Hour, "lifetime of the webhook access tokens /webhooks/token issues")
	fs.StringVar(&c.webhookHeader, "webhook-header", "", `static header of the upstream's webhook calls, as "Name: value" (the custom headers of Incode's dashboard, Configuration -> Webhooks; a value of at least 32 bytes, e.g. openssl rand -hex 32): turns on POST /webhooks/onboarding-status for calls that carry it`)
	fs.Var(&c.relayURLs, "relay-url", "URL of your backend that gets every webhook the upstream sends (its body byte for byte) and pushgate's session events (session.status, session.ended), signed as Standard Webhooks; comma-separated or repeated for several")
	fs.Var(&c.relaySecrets, "relay-secret", "secret the relayed events are signed with: whsec_ and the base64 of at least 24 random bytes (whsec_$(openssl rand -base64 32)); two (comma-separated or repeated) sign with both, for a rotation; required with -relay-url")
	fs.StringVar(&c.relayEvents, "relay-events", strings.Join(relay.Kinds, ","), "comma-separated kinds of relayed events: upstream (the upstream's webhooks), status (session.status), ended (session.ended)")
	fs.StringVar(&g.Relay.Dir, "relay-dir", "", "directory of the relay's queue on a single node (a bbolt file): what was accepted survives a restart or a crash; empty keeps it in memory; with -redis-url the queue is in Redis")
	fs.DurationVar(&g.Relay.Timeout, "relay-timeout", relay.DefaultTimeout, "time your backend has to answer one relayed event; slower answers are cut and tried again")
	fs.DurationVar(&g.Relay.MaxAge, "relay-max-age", 24*time.Hour, "how long a relayed event is retried (network errors, timeouts, 408, 429, 5xx) before it is kept as failed, for GET /v1/relay/failed")
	fs.DurationVar(&g.Relay.BackoffMax, "relay-backoff-max", 5*time.Minute, "longest wait between two attempts of a relayed event (the wait doubles from 1s)")
	fs.IntVar(&g.Relay.MaxQueue, "relay-max-queue", 100_000, "relayed deliveries that may wait at once (one event to one URL); past it new events are dropped, counted in pushgate_relay_events_total{outcome=\"dropped\"} and logged")
	fs.StringVar(&c.webhookSources, "webhook-allowed-ips", "", "comma-separated addresses or CIDR ranges webhook calls are taken from; empty takes them from anywhere")
	fs.StringVar(&c.permissions, "iframe-permissions", "camera,microphone,geolocation,accelerometer,gyroscope", "comma-separated device features the flow in the iframe may use: the iframe's allow attribute and the Permissions-Policy header grant them to the -flow-origin origins alone")
	fs.StringVar(&c.languages, "languages", "en-US", "comma-separated languages the flow may start in; the page asks for one, and one not listed gets the first")
	fs.StringVar(&g.Simulator.WebhookAuth, "sim-webhook-auth", "", "how the built-in simulator authenticates its webhook calls, as the upstream can: path (no header, the secret in the URL), bearer, oauth (client credentials), or header (the -webhook-header, as the dashboard's custom headers); empty means oauth with -webhook-client-id, else header with -webhook-header, else path")
	fs.StringVar(&g.Simulator.Order, "sim-order", "steps", "order the built-in simulator's flow page sets statuses in: steps (one per step) or incode (the orders Incode's flows send)")
	fs.Float64Var(&g.Simulator.WebhookRetryScale, "sim-webhook-retry-scale", 1, "multiplies the waits between the built-in simulator's retries of a failed webhook call (the upstream's: 5 retries, 30s then x2.5 each, about 32 minutes); 0.001 makes them milliseconds")
	fs.DurationVar(&g.Simulator.FlowTimeout, "sim-flow-timeout", 0, "the built-in simulator sets EXPIRED, with its webhook, on a session whose flow has not ended this long after its start, as the upstream's flow timeout; 0 means none")
	fs.DurationVar(&g.Poller.PushInterval, "push-interval", 15*time.Second, "safety poll interval of an interview whose changes arrive by webhook")
	fs.DurationVar(&g.Poller.PushSilence, "push-silence", time.Minute, "after this long without a webhook, an interview is polled at -poll-interval again")
	fs.DurationVar(&g.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client has to send its request headers (slow clients are cut off)")
	fs.DurationVar(&g.IdleTimeout, "idle-timeout", 120*time.Second, "how long a keep-alive connection may wait for its next request; set it above the idle timeout a load balancer keeps its connections to pushgate for (Google Cloud's: 600s), or it may reuse one pushgate just closed and answer 502 (under load, idle connections are closed sooner: see -max-conns-per-client)")
	fs.DurationVar(&g.HTTP.ReadTimeout, "read-timeout", 10*time.Second, "time a request other than a stream has to send its body; its whole handling gets this plus the request's upstream time, then the connection is closed")
	fs.IntVar(&g.MaxConnectionsPerClient, "max-conns-per-client", 512, "open connections one client address (an IPv6 client's /64) may hold; more are answered 429 at once, except GET /healthz, /readyz and /metrics, which are served; the -trusted-proxies are exempt; 0 or negative means no cap")
	fs.IntVar(&g.MaxConnectionsPerClient56, "max-conns-per-client-56", 0, "open connections the IPv6 clients of one /56 (what an ISP usually gives one site) may hold together, so a client cannot multiply -max-conns-per-client over its /64s; more are answered 429 at once, probes aside; the -trusted-proxies are exempt; 0 means twice -max-conns-per-client (none when that is off); negative means no cap")
	fs.DurationVar(&g.Poller.Interval, "poll-interval", time.Second, "upstream status poll interval per interview")
	fs.DurationVar(&g.Poller.ProbeInterval, "probe-interval", 0, "time between two probes of the upstream (GET /0/omni/get/onboarding/status without a token, which the upstream refuses with 401) while it fails, after a failed status read, or while this node reads nothing; one per interval for the whole node, none while reads succeed; /readyz follows them; 0 means -poll-interval")
	fs.DurationVar(&g.Poller.Retention, "retention", 0, "how long an interview nobody watches or reads is remembered (its status and upstream session token, on this node and in Redis); 0 means -token-ttl; raise it when your backend reads scores later with GET /v1/sessions/{interviewId}")
	fs.DurationVar(&g.Poller.Linger, "linger", 10*time.Second, "how long a poller runs after its last subscriber left")
	fs.DurationVar(&g.Poller.BackoffMax, "backoff-max", 30*time.Second, "cap of the exponential backoff after upstream errors")
	fs.IntVar(&g.Poller.MaxConcurrent, "max-upstream-calls", 64, "cap on concurrent upstream status calls")
	fs.Float64Var(&g.Poller.MaxCallsPerSecond, "max-upstream-rate", 0, "ceiling on upstream calls per second on this node (status reads, session starts, onboarding URLs, scores; outage retries and recoveries stay under it); 0 means none")
	fs.DurationVar(&g.Upstream.Timeout, "upstream-timeout", 5*time.Second, "timeout of each upstream call")
	fs.DurationVar(&g.Broker.Heartbeat, "heartbeat", 15*time.Second, "interval of SSE heartbeat comments")
	fs.DurationVar(&g.Broker.WriteTimeout, "write-timeout", 10*time.Second, "deadline of each SSE write; slower clients are dropped")
	fs.BoolVar(&g.HTTP.SecureCookie, "secure-cookie", false, "mark the session cookie Secure even without TLS here (behind a TLS proxy)")
	fs.DurationVar(&g.DrainDelay, "drain-delay", 0, "on SIGTERM, how long /readyz answers 503 while everything else keeps serving, before streams are ended (give the load balancer time to stop routing here)")
	fs.DurationVar(&g.ShutdownGrace, "shutdown-grace", 10*time.Second, "time allowed for a clean shutdown on SIGINT/SIGTERM")
	fs.StringVar(&g.Redis.URL, "redis-url", "", "Redis URL (redis://[user:password@]host:port[/db], rediss:// for TLS) of a cluster of gateway nodes: each interview is then polled by one node and its changes reach every node; empty runs a single node without Redis")
	fs.StringVar(&g.Redis.Prefix, "redis-prefix", "pushgate", "prefix of the Redis keys and channel, so several gateways can share one Redis")
	fs.DurationVar(&g.Redis.LeaseTTL, "lease-ttl", 3*time.Second, "with -redis-url, how long a node's poll lease outlives it: a dead node's interviews are taken over within it")
	fs.StringVar(&g.Redis.Password, "redis-password", "", "password of the Redis servers (AUTH), when -redis-url carries none: the master's with Sentinel (the sentinels' own goes in the URL), every node's of a Redis Cluster; keeps it out of the URL, e.g. in PUSHGATE_REDIS_PASSWORD_FILE")
	fs.BoolVar(&g.Redis.Cluster, "redis-cluster", false, "take -redis-url as a Redis Cluster's seed nodes: redis://N1:6379?addr=N2:6379&addr=N3:6379")
	fs.StringVar(&g.Redis.TLS.CA, "redis-ca", "", "PEM file of the CA that signed the Redis servers' certificates (a private CA, Memorystore's server CA), with rediss://; empty trusts the system's roots")
	fs.StringVar(&g.Redis.TLS.Cert, "redis-cert", "", "PEM file of a client certificate for Redis servers that ask for one (tls-auth-clients), with -redis-key and rediss://")
	fs.StringVar(&g.Redis.TLS.Key, "redis-key", "", "PEM file of the key of -redis-cert")
	fs.StringVar(&g.Redis.TLS.ServerName, "redis-tls-server-name", "", "name the Redis servers' certificates carry, when it is not the host in -redis-url (an IP address, a load balancer's name)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate chain file: with -tls-key, the gateway serves HTTPS and HTTP/2 itself, and reloads the pair when the files change (cert-manager's rotation) without dropping streams; empty serves plain HTTP, as behind a TLS-terminating proxy")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key file of -tls-cert")
	fs.StringVar(&c.tlsMinVersion, "tls-min-version", "1.2", "oldest TLS version served with -tls-cert: 1.2 or 1.3")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&c.version, "version", false, "print the version, VCS revision and Go version of this build, and exit")
}

// usage prints every flag with its environment variable.
func usage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprintf(out, "Usage: pushgate [flags]\n\npushgate pushes onboarding status changes to browsers over Server-Sent Events.\nEvery flag can also be set with its environment variable (shown in brackets); flags win.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(out, "  -%s [%s]\n    \t%s%s\n", f.Name, envName(f.Name), f.Usage, def)
	})
	fmt.Fprintf(out, "\nSecret flags (-%s) also read from the file PUSHGATE_<NAME>_FILE names (e.g. %s), once at start, whitespace trimmed.\n", strings.Join(secretFlags, ", -"), fileEnvName("api-token"))
	fmt.Fprintf(out, "\n  pushgate -healthcheck URL\n    \texit 0 when URL answers 200 (the container health probe)\n")
}

// finish checks the values and fills the gateway's lists from theirs.
func (c *config) finish() error {
	// Split before validate, which checks them.
	c.gw.HTTP.Flows = splitList(c.flowIDs)
	c.gw.HTTP.APITokens = splitList(c.apiTokens)
	if err := c.validate(); err != nil {
		return err
	}
	c.gw.HTTP.AllowedOrigins = splitList(c.allowedOrigins)
	c.gw.FlowOrigins = splitList(c.flowOrigins)
	c.gw.HTTP.IframePermissions = splitList(c.permissions)
	c.gw.HTTP.Languages = splitList(c.languages)
	if c.previousUntil != "" {
		until, err := time.Parse(time.RFC3339, c.previousUntil)
		if err != nil {
			return fmt.Errorf("-previous-secret-until %q: want an RFC 3339 time like 2026-12-31T00:00:00Z", c.previousUntil)
		}
		c.gw.PreviousSecretUntil = until
	}
	c.gw.HTTP.BackendSessionsOnly = !c.publicSessions
	if c.webhookHeader != "" {
		name, value, ok := strings.Cut(c.webhookHeader, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok {
			return errors.New(`-webhook-header: want "Name: value", e.g. "X-Incode-Hook: $(openssl rand -hex 32)"`)
		}
		if err := sse.CheckWebhookHeader(name, value); err != nil {
			return fmt.Errorf("-webhook-header: %w", err)
		}
		c.gw.HTTP.WebhookHeaderName, c.gw.HTTP.WebhookHeaderValue = name, value
	}
	if err := c.finishRelay(); err != nil {
		return err
	}
	if err := c.finishTLS(); err != nil {
		return err
	}
	if err := c.checkRedis(); err != nil {
		return err
	}
	var err error
	if c.gw.HTTP.WebhookSources, err = parsePrefixes("-webhook-allowed-ips", c.webhookSources); err != nil {
		return err
	}
	c.gw.HTTP.TrustedProxies, err = parsePrefixes("-trusted-proxies", c.trustedProxies)
	return err
}

func (c *config) validate() error {
	g := &c.gw
	if g.Upstream.BaseURL != "" && (g.Upstream.APIKey == "" || len(g.HTTP.Flows) == 0) {
		return errors.New("-upstream needs -api-key and -flow-id")
	}
	if err := sse.CheckFlows(g.HTTP.Flows); err != nil {
		return fmt.Errorf("-flow-id: %w", err)
	}
	if g.Secret != "" && len(g.Secret) < 16 {
		return errors.New("-secret must be at least 16 bytes")
	}
	if g.PreviousSecret != "" && (len(g.PreviousSecret) < 16 || g.Secret == "") {
		return errors.New("-previous-secret must be at least 16 bytes and needs -secret")
	}
	if (g.Upstream.AdminEmail == "") != (g.Upstream.AdminPassword == "") || (g.Upstream.AdminEmail != "" && g.Upstream.AdminToken != "") {
		return errors.New("-admin-email and -admin-password go together, and not with -admin-token: pushgate logs in by itself, or uses the token it is given")
	}
	if (g.HTTP.WebhookClientID == "") != (g.HTTP.WebhookClientSecret == "") {
		return errors.New("-webhook-client-id and -webhook-client-secret go together")
	}
	for _, f := range []struct{ name, value string }{{"-webhook-secret", g.HTTP.WebhookSecret}, {"-webhook-client-secret", g.HTTP.WebhookClientSecret}} {
		if f.value == "" {
			continue
		}
		if err := sse.CheckWebhookSecret(f.value); err != nil {
			return fmt.Errorf("%s %w", f.name, err)
		}
	}
	if g.HTTP.SessionBurst <= 0 || g.HTTP.APIBurst <= 0 || g.HTTP.NodeSessionBurst <= 0 || g.HTTP.ScoreBurst <= 0 {
		return errors.New("-session-burst, -max-session-burst, -score-burst and -api-burst must be positive")
	}
	for _, t := range g.HTTP.APITokens {
		if len(t) < 16 || strings.ContainsAny(t, " \t") {
			return errors.New("-api-token: each API token must be at least 16 bytes, without spaces")
		}
	}
	if g.HTTP.ClientIPHeader != "" && c.trustedProxies == "" {
		return errors.New("-client-ip-header needs -trusted-proxies: without them any client could name its own address")
	}
	if !c.publicSessions && len(g.HTTP.APITokens) == 0 {
		return errors.New("-public-sessions=false needs -api-token: without the server API nothing could start a session")
	}
	if g.Broker.MaxPerInterview == 0 || g.Broker.MaxPerClient == 0 {
		return errors.New("-max-streams-per-interview and -max-streams-per-client must not be 0 (negative means no cap)")
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return fmt.Errorf("-log-format %q: want text or json", c.logFormat)
	}
	for name, d := range map[string]time.Duration{
		"-token-ttl": g.TokenTTL, "-poll-interval": g.Poller.Interval, "-backoff-max": g.Poller.BackoffMax,
		"-upstream-timeout": g.Upstream.Timeout, "-heartbeat": g.Broker.Heartbeat, "-write-timeout": g.Broker.WriteTimeout,
		"-shutdown-grace": g.ShutdownGrace, "-linger": g.Poller.Linger, "-read-header-timeout": g.ReadHeaderTimeout,
		"-push-interval": g.Poller.PushInterval, "-push-silence": g.Poller.PushSilence, "-read-timeout": g.HTTP.ReadTimeout,
		"-admin-token-ttl": g.Upstream.AdminTokenTTL, "-webhook-token-ttl": g.HTTP.WebhookTokenTTL, "-idle-timeout": g.IdleTimeout,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	if g.DrainDelay < 0 || g.DrainDelay >= g.ShutdownGrace {
		return errors.New("-drain-delay must be at least 0 and below -shutdown-grace")
	}
	if g.Poller.Retention < 0 {
		return errors.New("-retention must not be negative")
	}
	if g.Poller.ProbeInterval < 0 {
		return errors.New("-probe-interval must not be negative (0 means -poll-interval)")
	}
	if c.previousGrace != 0 {
		return errors.New("-previous-secret-grace is gone: a grace counted from start grew with every restart; set -previous-secret-until to an absolute time (RFC 3339), one -token-ttl after the rotation")
	}
	if (g.PreviousSecret == "") != (c.previousUntil == "") {
		return errors.New("-previous-secret and -previous-secret-until go together")
	}
	if g.Poller.MaxCallsPerSecond < 0 {
		return errors.New("-max-upstream-rate must not be negative")
	}
	if g.Poller.MaxConcurrent <= 0 {
		return errors.New("-max-upstream-calls must be positive")
	}
	if g.Redis.URL != "" {
		switch {
		case g.Secret == "":
			return errors.New("-redis-url needs -secret: every node of a cluster must verify the tokens the others issue")
		case g.Upstream.BaseURL == "":
			return errors.New("-redis-url needs -upstream: the nodes of a cluster must share one upstream (run pushgate-sim for a simulated one)")
		case g.Redis.LeaseTTL < 100*time.Millisecond:
			return errors.New("-lease-ttl must be at least 100ms")
		}
	}
	return nil
}

// parsePrefixes reads flag's comma-separated list of addresses and CIDR
// ranges.
func parsePrefixes(flag, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(v) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("%s: %q is neither an address nor a CIDR range", flag, item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// listFlag is a flag that takes a comma-separated list, and may be
// repeated: its items add up.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}
