package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pushgate/pushgate/relay"
)

// The flags of the command, declared by concern, and its -h text.

// A flagGroup is the flags of one concern, as -h lists them: under its
// title, by name.
type flagGroup struct {
	title string
	names []string
}

// define declares every flag of the command, one concern at a time, and
// returns the flags of each concern, in this order, for -h.
func (c *config) define(fs *flag.FlagSet) []flagGroup {
	concerns := []struct {
		title  string
		define func(*flag.FlagSet)
	}{
		{"Upstream onboarding API", c.defineUpstream},
		{"Polling", c.definePolling},
		{"Browser tokens", c.defineTokens},
		{"Page and flow", c.definePage},
		{"Server API", c.defineAPI},
		{"Rate limits and connection caps", c.defineLimits},
		{"SSE streams", c.defineStreams},
		{"Webhooks", c.defineWebhooks},
		{"Relay", c.defineRelay},
		{"Cluster", c.defineCluster},
		{"Listeners", c.defineServer},
		{"Built-in simulator", c.defineSimulator},
		{"Logs and build", c.defineLogs},
	}
	groups := make([]flagGroup, len(concerns))
	listed := map[string]bool{}
	for i, k := range concerns {
		k.define(fs)
		groups[i].title = k.title
		fs.VisitAll(func(f *flag.Flag) { // by name; only the concern's are new
			if !listed[f.Name] {
				listed[f.Name] = true
				groups[i].names = append(groups[i].names, f.Name)
			}
		})
	}
	return groups
}

// defineUpstream declares the flags of the upstream onboarding API: where
// it is, the credentials pushgate calls it with, the flows sessions start
// in.
func (c *config) defineUpstream(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&g.Upstream.BaseURL, "upstream", "", "base URL of the upstream onboarding API, e.g. https://demo-api.incodesmile.com; empty runs the built-in simulator")
	fs.StringVar(&g.Upstream.APIKey, "api-key", "", "upstream API key (x-api-key), sent on every upstream call; required with -upstream")
	fs.StringVar(&c.flowIDs, "flow-id", "", "comma-separated upstream flows (configurationIds) sessions start in: the first is the default, which the page's sessions run, and POST /v1/sessions may name any of them; required with -upstream; empty with the built-in simulator means pushgate-sim-flow")
	fs.StringVar(&g.Upstream.AdminToken, "admin-token", "", "upstream admin token, renewed by whoever sets it (they expire after 24 h); when set, statuses and scores are read by interview id with it")
	fs.StringVar(&g.Upstream.AdminEmail, "admin-email", "", "upstream executive (admin) email; with -admin-password, pushgate logs in by itself (POST /executive/log-in), renews its admin token before it expires, and reads statuses and scores by interview id")
	fs.StringVar(&g.Upstream.AdminPassword, "admin-password", "", "upstream executive (admin) password, with -admin-email")
	fs.DurationVar(&g.Upstream.AdminTokenTTL, "admin-token-ttl", 24*time.Hour, "lifetime of the admin tokens a log-in gives (the upstream's is 24 h); renewed after three quarters of it")
	fs.DurationVar(&g.Upstream.Timeout, "upstream-timeout", 5*time.Second, "timeout of each upstream call")
}

// definePolling declares the flags of the pollers: how often an interview
// is read, how long it is remembered, how hard the upstream is asked.
func (c *config) definePolling(fs *flag.FlagSet) {
	g := &c.gw
	fs.DurationVar(&g.Poller.Interval, "poll-interval", time.Second, "upstream status poll interval per interview")
	fs.DurationVar(&g.Poller.PushInterval, "push-interval", 15*time.Second, "safety poll interval of an interview whose changes arrive by webhook")
	fs.DurationVar(&g.Poller.PushSilence, "push-silence", time.Minute, "after this long without a webhook, an interview is polled at -poll-interval again")
	fs.DurationVar(&g.Poller.ProbeInterval, "probe-interval", 0, "time between two probes of the upstream (GET /0/omni/get/onboarding/status without a token, which the upstream refuses with 401) while it fails, after a failed status read, or while this node reads nothing; one per interval for the whole node, none while reads succeed; /readyz follows them; 0 means -poll-interval")
	fs.DurationVar(&g.Poller.Retention, "retention", 0, "how long an interview nobody watches or reads is remembered (its status and upstream session token, on this node and in Redis); 0 means -token-ttl; raise it when your backend reads scores later with GET /v1/sessions/{interviewId}")
	fs.DurationVar(&g.Poller.Linger, "linger", 10*time.Second, "how long a poller runs after its last subscriber left")
	fs.DurationVar(&g.Poller.BackoffMax, "backoff-max", 30*time.Second, "cap of the exponential backoff after upstream errors")
	fs.IntVar(&g.Poller.MaxConcurrent, "max-upstream-calls", 64, "cap on concurrent upstream status calls")
	fs.Float64Var(&g.MaxUpstreamCallsPerSecond, "max-upstream-rate", 0, "ceiling on upstream calls per second on this node (status reads, session starts, onboarding URLs, scores; outage retries and recoveries stay under it); 0 means none")
}

// defineTokens declares the flags of the browser tokens: the secret that
// signs them, its rotation, their lifetime.
func (c *config) defineTokens(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&g.Secret, "secret", "", "HMAC secret for browser tokens, at least 16 bytes; empty picks a random one (tokens then die with the process)")
	fs.StringVar(&g.PreviousSecret, "previous-secret", "", "the secret before the last rotation; tokens it signed stay valid until -previous-secret-until, and session tokens it sealed in Redis still open")
	fs.StringVar(&c.previousUntil, "previous-secret-until", "", "when tokens signed with -previous-secret stop verifying, as an RFC 3339 time (e.g. 2026-12-31T00:00:00Z): an absolute end, which a restart never extends; required with -previous-secret; set it one -token-ttl after the rotation")
	fs.DurationVar(&g.TokenTTL, "token-ttl", time.Hour, "lifetime of browser tokens")
}

// definePage declares the flags of the page and the flow in its iframe:
// who may frame and call the page, what the iframe may use.
func (c *config) definePage(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&c.flowOrigins, "flow-origin", "", "comma-separated origins of the onboarding flow pages the iframe shows (CSP frame-src, Permissions-Policy, the iframe's allow), or * alone for any page (the camera and the rest then go to whatever page the iframe shows); empty means the simulator's origin, or the -upstream origin")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma-separated origins that may call the API with credentials (CORS); empty allows none")
	fs.StringVar(&g.HTTP.FrameAncestors, "frame-ancestors", "'self'", "CSP frame-ancestors: who may frame the page ('none', 'self', origins)")
	fs.StringVar(&c.permissions, "iframe-permissions", "camera,microphone,geolocation,accelerometer,gyroscope", "comma-separated device features the flow in the iframe may use: the iframe's allow attribute and the Permissions-Policy header grant them to the -flow-origin origins alone")
	fs.StringVar(&c.languages, "languages", "en-US", "comma-separated languages the flow may start in; the page asks for one, and one not listed gets the first")
	fs.BoolVar(&g.HTTP.SecureCookie, "secure-cookie", false, "mark the session cookie Secure even without TLS here (behind a TLS proxy)")
}

// defineAPI declares the flags of the server API under /v1, and of who may
// start sessions: the page's visitors, or the integrator's backend alone.
func (c *config) defineAPI(fs *flag.FlagSet) {
	g := &c.gw
	fs.BoolVar(&c.publicSessions, "public-sessions", true, "anyone who reaches /onboarding-url may start a (paid) upstream session, as the demo page does; set false in production, so only your backend starts sessions (POST /v1/sessions)")
	fs.StringVar(&c.apiTokens, "api-token", "", "comma-separated API tokens of the server API under /v1 (Authorization: Bearer), each 16 to 256 bytes of printable ASCII without spaces; several allow rotation; empty turns the server API off")
	fs.Float64Var(&g.HTTP.APIRequestsPerMinute, "api-requests-per-minute", 1200, "server API requests allowed per API token per minute; negative turns the ceiling off")
	fs.IntVar(&g.HTTP.APIBurst, "api-burst", 100, "server API requests an API token may make at once")
}

// defineLimits declares the rate limits and connection caps per client
// address, browser token and node, and the proxies behind which a
// client's address is read.
func (c *config) defineLimits(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDR ranges of the reverse proxies in front: only from them are Forwarded, X-Forwarded-For (or -client-ip-header) and X-Forwarded-Proto believed; empty believes none")
	fs.StringVar(&g.HTTP.ClientIPHeader, "client-ip-header", "", "header the -trusted-proxies set to the client address chain when they send no Forwarded header; empty means X-Forwarded-For")
	fs.Float64Var(&g.HTTP.SessionsPerMinute, "sessions-per-minute", 10, "new upstream sessions (/onboarding-url) allowed per client address per minute; negative turns the limit off")
	fs.IntVar(&g.HTTP.SessionBurst, "session-burst", 5, "new sessions a client address may start at once")
	fs.Float64Var(&g.HTTP.NodeSessionsPerMinute, "max-sessions-per-minute", 600, "new upstream sessions (/onboarding-url) this node starts per minute from all addresses together; negative turns the ceiling off")
	fs.IntVar(&g.HTTP.NodeSessionBurst, "max-session-burst", 100, "new sessions this node may start at once, from all addresses together")
	fs.Float64Var(&g.HTTP.ScoreReadsPerMinute, "score-reads-per-minute", 30, "/fetch-score reads allowed per browser token per minute (the score is kept once read, so reads cost no upstream call); negative turns the limit off")
	fs.IntVar(&g.HTTP.ScoreBurst, "score-burst", 10, "/fetch-score reads a browser token may make at once")
	fs.IntVar(&g.MaxConnectionsPerClient, "max-conns-per-client", 512, "open connections one client address (an IPv6 client's /64) may hold; more are answered 429 at once, except GET /healthz, /readyz and /metrics, which are served; the -trusted-proxies are exempt; 0 or negative means no cap")
	fs.IntVar(&g.MaxConnectionsPerClient56, "max-conns-per-client-56", 0, "open connections the IPv6 clients of one /56 (what an ISP usually gives one site) may hold together, so a client cannot multiply -max-conns-per-client over its /64s; more are answered 429 at once, probes aside; the -trusted-proxies are exempt; 0 means twice -max-conns-per-client (none when that is off); negative means no cap")
}

// defineStreams declares the flags of the SSE streams: their caps,
// heartbeat and write deadline.
func (c *config) defineStreams(fs *flag.FlagSet) {
	g := &c.gw
	fs.IntVar(&c.maxStreams, "max-streams", 0, "cap on open SSE streams on this node; 0 means the connection cap (the open-file limit less 300) less 50; negative means none")
	fs.IntVar(&g.Broker.MaxPerInterview, "max-streams-per-interview", 16, "cap on open SSE streams of one interview; negative means none")
	fs.IntVar(&g.Broker.MaxPerClient, "max-streams-per-client", 256, "cap on open SSE streams from one client address; negative means none")
	fs.DurationVar(&g.Broker.Heartbeat, "heartbeat", 15*time.Second, "interval of SSE heartbeat comments")
	fs.DurationVar(&g.Broker.WriteTimeout, "write-timeout", 10*time.Second, "deadline of each SSE write; slower clients are dropped")
}

// defineWebhooks declares the flags of the upstream's webhook calls: how
// they authenticate and where from.
func (c *config) defineWebhooks(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&g.HTTP.WebhookSecret, "webhook-secret", "", "secret of the upstream's webhook calls, at least 32 bytes (openssl rand -hex 32): a static bearer on POST /webhooks/onboarding-status, or in the path of POST /webhooks/onboarding-status/<secret> (with the built-in simulator, a random one is used when empty)")
	fs.StringVar(&g.HTTP.WebhookClientID, "webhook-client-id", "", "OAuth 2.0 client id the upstream gets webhook access tokens with (POST /webhooks/token); set it, -webhook-client-secret and the authentication URL https://<gateway>/webhooks/token in the upstream's dashboard")
	fs.StringVar(&g.HTTP.WebhookClientSecret, "webhook-client-secret", "", "OAuth 2.0 client secret, with -webhook-client-id; at least 32 bytes (openssl rand -hex 32)")
	fs.DurationVar(&g.HTTP.WebhookTokenTTL, "webhook-token-ttl", time.Hour, "lifetime of the webhook access tokens /webhooks/token issues")
	fs.StringVar(&c.webhookHeader, "webhook-header", "", `static header of the upstream's webhook calls, as "Name: value" (the custom headers of Incode's dashboard, Configuration -> Webhooks; a value of at least 32 bytes, e.g. openssl rand -hex 32): turns on POST /webhooks/onboarding-status for calls that carry it`)
	fs.StringVar(&c.webhookSources, "webhook-allowed-ips", "", "comma-separated addresses or CIDR ranges webhook calls are taken from; empty takes them from anywhere")
}

// defineRelay declares the flags of the relay of webhooks and session
// events to the integrator's backend.
func (c *config) defineRelay(fs *flag.FlagSet) {
	g := &c.gw
	fs.Var(&c.relayURLs, "relay-url", "URL of your backend that gets every webhook the upstream sends (its body byte for byte) and pushgate's session events (session.status, session.ended), signed as Standard Webhooks; comma-separated or repeated for several")
	fs.Var(&c.relaySecrets, "relay-secret", "secret the relayed events are signed with: whsec_ and the base64 of at least 24 random bytes (whsec_$(openssl rand -base64 32)); two (comma-separated or repeated) sign with both, for a rotation; required with -relay-url")
	fs.StringVar(&c.relayEvents, "relay-events", strings.Join(relay.Kinds, ","), "comma-separated kinds of relayed events: upstream (the upstream's webhooks), status (session.status), ended (session.ended)")
	fs.StringVar(&g.Relay.Dir, "relay-dir", "", "directory of the relay's queue on a single node (a bbolt file): what was accepted survives a restart or a crash; empty keeps it in memory; with -redis-url the queue is in Redis")
	fs.DurationVar(&g.Relay.Timeout, "relay-timeout", relay.DefaultTimeout, "time your backend has to answer one relayed event; slower answers are cut and tried again")
	fs.DurationVar(&g.Relay.MaxAge, "relay-max-age", 24*time.Hour, "how long a relayed event is retried (network errors, timeouts, 408, 429, 5xx) before it is kept as failed, for GET /v1/relay/failed")
	fs.DurationVar(&g.Relay.BackoffMax, "relay-backoff-max", 5*time.Minute, "longest wait between two attempts of a relayed event (the wait doubles from 1s)")
	fs.IntVar(&g.Relay.MaxQueue, "relay-max-queue", 100_000, "relayed deliveries that may wait at once (one event to one URL); past it new events are dropped, counted in pushgate_relay_events_total{outcome=\"dropped\"} and logged")
}

// defineCluster declares the flags of a cluster of nodes over Redis.
func (c *config) defineCluster(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&g.Redis.URL, "redis-url", "", "Redis URL (redis://[user:password@]host:port[/db], rediss:// for TLS) of a cluster of gateway nodes: each interview is then polled by one node and its changes reach every node; empty runs a single node without Redis")
	fs.StringVar(&g.Redis.Prefix, "redis-prefix", "pushgate", "prefix of the Redis keys and channel, so several gateways can share one Redis")
	fs.DurationVar(&g.Redis.LeaseTTL, "lease-ttl", 3*time.Second, "with -redis-url, how long a node's poll lease outlives it: a dead node's interviews are taken over within it")
	fs.StringVar(&g.Redis.Password, "redis-password", "", "password of the Redis servers (AUTH), when -redis-url carries none: the master's with Sentinel (the sentinels' own goes in the URL), every node's of a Redis Cluster; keeps it out of the URL, e.g. in PUSHGATE_REDIS_PASSWORD_FILE")
	fs.BoolVar(&g.Redis.Cluster, "redis-cluster", false, "take -redis-url as a Redis Cluster's seed nodes: redis://N1:6379?addr=N2:6379&addr=N3:6379")
	fs.StringVar(&g.Redis.TLS.CA, "redis-ca", "", "PEM file of the CA that signed the Redis servers' certificates (a private CA, Memorystore's server CA), with rediss://; empty trusts the system's roots")
	fs.StringVar(&g.Redis.TLS.Cert, "redis-cert", "", "PEM file of a client certificate for Redis servers that ask for one (tls-auth-clients), with -redis-key and rediss://")
	fs.StringVar(&g.Redis.TLS.Key, "redis-key", "", "PEM file of the key of -redis-cert")
	fs.StringVar(&g.Redis.TLS.ServerName, "redis-tls-server-name", "", "name the Redis servers' certificates carry, when it is not the host in -redis-url (an IP address, a load balancer's name)")
}

// defineServer declares the flags of the listeners: addresses, TLS,
// timeouts and shutdown.
func (c *config) defineServer(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&c.addr, "addr", ":8080", "listen address of the gateway (page, API, SSE)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "listen address of an internal listener serving /metrics, /healthz and /readyz (e.g. 127.0.0.1:9090, or a private interface); when set, -addr answers /metrics 404 and still serves /healthz and /readyz; empty serves /metrics on -addr")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate chain file: with -tls-key, the gateway serves HTTPS and HTTP/2 itself, and reloads the pair when the files change (cert-manager's rotation) without dropping streams; empty serves plain HTTP, as behind a TLS-terminating proxy")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key file of -tls-cert")
	fs.StringVar(&c.tlsMinVersion, "tls-min-version", "1.2", "oldest TLS version served with -tls-cert: 1.2 or 1.3")
	fs.DurationVar(&g.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client has to send its request headers (slow clients are cut off)")
	fs.DurationVar(&g.HTTP.ReadTimeout, "read-timeout", 10*time.Second, "time a request other than a stream has to send its body; its whole handling gets this plus the request's upstream time, then the connection is closed")
	fs.DurationVar(&g.IdleTimeout, "idle-timeout", 120*time.Second, "how long a keep-alive connection may wait for its next request; set it above the idle timeout a load balancer keeps its connections to pushgate for (Google Cloud's: 600s), or it may reuse one pushgate just closed and answer 502 (under load, idle connections are closed sooner: see -max-conns-per-client)")
	fs.DurationVar(&g.DrainDelay, "drain-delay", 0, "on SIGTERM, how long /readyz answers 503 while everything else keeps serving, before streams are ended (give the load balancer time to stop routing here)")
	fs.DurationVar(&g.ShutdownGrace, "shutdown-grace", 10*time.Second, "time allowed for a clean shutdown on SIGINT/SIGTERM")
}

// defineSimulator declares the flags of the built-in simulator, which runs
// without -upstream.
func (c *config) defineSimulator(fs *flag.FlagSet) {
	g := &c.gw
	fs.StringVar(&c.simAddr, "sim-addr", "127.0.0.1:8090", "listen address of the built-in simulator (only without -upstream)")
	fs.StringVar(&g.Simulator.PublicURL, "sim-public-url", "", "URL browsers reach the simulator at; empty means http://<sim-addr>")
	fs.BoolVar(&g.Simulator.Webhooks, "sim-webhooks", true, "the built-in simulator pushes every status change to the gateway's webhook, as the upstream does once configured; false leaves the gateway to polling alone")
	fs.StringVar(&g.Simulator.ControlToken, "sim-control-token", "", "bearer token (Authorization: Bearer <token>, at least 16 bytes) the built-in simulator's control API /sim/... takes when -sim-addr is beyond loopback; empty turns the control API off there (on loopback it answers any program: JSON bodies, a loopback Host, no Origin header)")
	fs.StringVar(&g.Simulator.Faults, "sim-faults", "", `faults the built-in simulator injects from the start, as its POST /sim/faults takes them, e.g. {"error_rate":0.2,"status":503}`)
	fs.StringVar(&g.Simulator.WebhookAuth, "sim-webhook-auth", "", "how the built-in simulator authenticates its webhook calls, as the upstream can: path (no header, the secret in the URL), bearer, oauth (client credentials), or header (the -webhook-header, as the dashboard's custom headers); empty means oauth with -webhook-client-id, else header with -webhook-header, else path")
	fs.StringVar(&g.Simulator.Order, "sim-order", "steps", "order the built-in simulator's flow page sets statuses in: steps (one per step) or incode (the orders Incode's flows send)")
	fs.Float64Var(&g.Simulator.WebhookRetryScale, "sim-webhook-retry-scale", 1, "multiplies the waits between the built-in simulator's retries of a failed webhook call (the upstream's: 5 retries, 30s then x2.5 each, about 32 minutes); 0.001 makes them milliseconds")
	fs.DurationVar(&g.Simulator.FlowTimeout, "sim-flow-timeout", 0, "the built-in simulator sets EXPIRED, with its webhook, on a session whose flow has not ended this long after its start, as the upstream's flow timeout; 0 means none")
}

// defineLogs declares the flags of the log and of this build.
func (c *config) defineLogs(fs *flag.FlagSet) {
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&c.version, "version", false, "print the version, VCS revision and Go version of this build, and exit")
}

// usage prints every flag with its environment variable, under the title
// of its concern.
func usage(fs *flag.FlagSet, groups []flagGroup, out io.Writer) {
	fmt.Fprintf(out, "Usage: pushgate [flags]\n\npushgate pushes onboarding status changes to browsers over Server-Sent Events.\nEvery flag can also be set with its environment variable (shown in brackets); flags win.\n")
	for _, g := range groups {
		fmt.Fprintf(out, "\n%s:\n", g.title)
		for _, name := range g.names {
			f := fs.Lookup(name)
			def := ""
			if f.DefValue != "" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(out, "  -%s [%s]\n    \t%s%s\n", f.Name, envName(f.Name), f.Usage, def)
		}
	}
	fmt.Fprintf(out, "\nSecret flags (-%s) also read from the file PUSHGATE_<NAME>_FILE names (e.g. %s), once at start, whitespace trimmed.\n", strings.Join(secretFlags, ", -"), fileEnvName("api-token"))
	fmt.Fprintf(out, "\n  pushgate -healthcheck URL\n    \texit 0 when URL answers 200 (the container health probe)\n")
}
