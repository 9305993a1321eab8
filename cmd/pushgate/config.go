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
	"github.com/pushgate/pushgate/sse"
)

// config is everything the command reads from flags and the environment:
// the gateway's Config, and what only the command uses.
type config struct {
	gw             gateway.Config
	addr           string
	simAddr        string
	metricsAddr    string   // "": /metrics on addr
	maxStreams     int      // 0: derived from the open-file limit (see capacity)
	fileLimit      uint64   // the open-file limit main raised; 0 when unknown
	allowedOrigins string   // comma-separated; into gw.HTTP.AllowedOrigins
	flowOrigins    string   // comma-separated, or "*"; into gw.FlowOrigins
	permissions    string   // comma-separated; into gw.HTTP.IframePermissions
	languages      string   // comma-separated; into gw.HTTP.Languages
	flowIDs        string   // comma-separated; into gw.HTTP.Flows
	webhookSources string   // comma-separated; into gw.HTTP.WebhookSources
	webhookHeader  string   // "Name: value"; into gw.HTTP.WebhookHeaderName and -Value
	relayURLs      listFlag // into gw.Relay.URLs
	relaySecrets   listFlag // into gw.Relay.Secrets
	relayEvents    string   // comma-separated; into gw.Relay.Kinds
	apiTokens      string   // comma-separated; into gw.HTTP.APITokens
	publicSessions bool     // into gw.HTTP.BackendSessionsOnly, negated
	trustedProxies string   // comma-separated; into gw.HTTP.TrustedProxies
	previousUntil  string   // RFC 3339; into gw.PreviousSecretUntil
	tlsCert        string   // PEM file; with tlsKey into gw.TLS
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
	groups := c.define(fs)
	fs.Usage = func() { usage(fs, groups, usageOut) }
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

// finish fills the gateway's config from the flags' values, and checks
// them.
func (c *config) finish() error {
	h := &c.gw.HTTP
	h.Flows, h.APITokens, h.AllowedOrigins = splitList(c.flowIDs), splitList(c.apiTokens), splitList(c.allowedOrigins)
	h.IframePermissions, h.Languages = splitList(c.permissions), splitList(c.languages)
	h.BackendSessionsOnly = !c.publicSessions
	c.gw.FlowOrigins = splitList(c.flowOrigins)
	var err error
	if h.WebhookSources, err = parsePrefixes("-webhook-allowed-ips", c.webhookSources); err != nil {
		return err
	}
	if h.TrustedProxies, err = parsePrefixes("-trusted-proxies", c.trustedProxies); err != nil {
		return err
	}
	if c.webhookHeader != "" {
		name, value, ok := strings.Cut(c.webhookHeader, ":")
		if !ok {
			return errors.New(`-webhook-header: want "Name: value", e.g. "X-Incode-Hook: $(openssl rand -hex 32)"`)
		}
		h.WebhookHeaderName, h.WebhookHeaderValue = strings.TrimSpace(name), strings.TrimSpace(value)
	}
	if err := c.validate(); err != nil {
		return err
	}
	if c.previousUntil != "" {
		until, err := time.Parse(time.RFC3339, c.previousUntil)
		if err != nil {
			return fmt.Errorf("-previous-secret-until %q: want an RFC 3339 time like 2026-12-31T00:00:00Z", c.previousUntil)
		}
		c.gw.PreviousSecretUntil = until
	}
	if err := c.finishRelay(); err != nil {
		return err
	}
	if err := c.finishTLS(); err != nil {
		return err
	}
	return c.checkRedis()
}

// validate refuses values that cannot work, one concern at a time, and
// returns the first refusal. A rule of a package's setting lives in that
// package's Check, which names the fields by their flags (see flagNames);
// validate adds the rules of the flags themselves: those that go
// together, and those whose 0 would not mean what their default says.
func (c *config) validate() error {
	for _, check := range []func() error{
		c.validateUpstream, c.validateTokens, c.validateHTTP, c.validateLimits,
		c.validateTimes, c.validatePolling, c.validateCluster,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	switch c.logFormat {
	case "text", "json":
		return nil
	default:
		return fmt.Errorf("-log-format %q: want text or json", c.logFormat)
	}
}

// flagNames maps the fields of a package's Config to the flags that set
// them, so that its Check names them as a CLI user knows them.
type flagNames map[string]string

// name is the flag that sets field, or field itself when no flag does.
func (f flagNames) name(field string) string {
	if flag, ok := f[field]; ok {
		return flag
	}
	return field
}

var (
	// upstreamFlags are the flags of the upstream.Config fields
	// upstream.Config.Check names.
	upstreamFlags = flagNames{
		"AdminEmail": "-admin-email", "AdminPassword": "-admin-password", "AdminTokenTTL": "-admin-token-ttl",
		"Timeout": "-upstream-timeout",
	}
	// httpFlags are the flags of the sse.Config fields sse.Config.Check
	// names.
	httpFlags = flagNames{
		"Flows": "-flow-id", "APITokens": "-api-token", "TrustedProxies": "-trusted-proxies", "ClientIPHeader": "-client-ip-header",
		"WebhookSecret": "-webhook-secret", "WebhookClientID": "-webhook-client-id", "WebhookClientSecret": "-webhook-client-secret",
		"WebhookHeaderName": "-webhook-header", "WebhookHeaderValue": "-webhook-header", "FrameAncestors": "-frame-ancestors",
		"AllowedOrigins": "-allowed-origins", "IframePermissions": "-iframe-permissions", "Languages": "-languages",
	}
	// pollerFlags are the flags of the poller.Config fields
	// poller.Config.Check names.
	pollerFlags = flagNames{
		"Interval": "-poll-interval", "Linger": "-linger", "BackoffMax": "-backoff-max", "Retention": "-retention",
		"PushInterval": "-push-interval", "PushSilence": "-push-silence", "ProbeInterval": "-probe-interval",
		"MaxConcurrent": "-max-upstream-calls",
	}
)

// validateUpstream checks the upstream's address and credentials
// (upstream.Config.Check), and that -upstream names its flows.
func (c *config) validateUpstream() error {
	g := &c.gw
	switch {
	case g.Upstream.BaseURL != "" && (g.Upstream.APIKey == "" || len(g.HTTP.Flows) == 0):
		return errors.New("-upstream needs -api-key and -flow-id")
	case g.Upstream.AdminEmail != "" && g.Upstream.AdminToken != "":
		return errors.New("-admin-email and -admin-password do not go with -admin-token: pushgate logs in by itself, or uses the token it is given")
	}
	return g.Upstream.Check(upstreamFlags.name)
}

// validateTokens checks the secrets of the browser tokens and their
// rotation.
func (c *config) validateTokens() error {
	g := &c.gw
	for _, s := range []struct{ flag, value string }{{"-secret", g.Secret}, {"-previous-secret", g.PreviousSecret}} {
		if s.value == "" {
			continue
		}
		if err := sse.CheckSecret([]byte(s.value)); err != nil {
			return fmt.Errorf("%s %w", s.flag, err)
		}
	}
	switch {
	case g.PreviousSecret != "" && g.Secret == "":
		return errors.New("-previous-secret needs -secret")
	case (g.PreviousSecret == "") != (c.previousUntil == ""):
		return errors.New("-previous-secret and -previous-secret-until go together")
	}
	return nil
}

// validateHTTP checks the settings of the HTTP surface: webhook
// credentials, API tokens, client addresses, the page and its flows.
func (c *config) validateHTTP() error { return c.gw.HTTP.Check(httpFlags.name) }

// validateLimits checks the rate limits, the stream caps, and that
// something can start sessions.
func (c *config) validateLimits() error {
	g := &c.gw
	if g.HTTP.SessionBurst <= 0 || g.HTTP.APIBurst <= 0 || g.HTTP.NodeSessionBurst <= 0 || g.HTTP.ScoreBurst <= 0 {
		return errors.New("-session-burst, -max-session-burst, -score-burst and -api-burst must be positive")
	}
	if !c.publicSessions && len(g.HTTP.APITokens) == 0 {
		return errors.New("-public-sessions=false needs -api-token: without the server API nothing could start a session")
	}
	if g.Broker.MaxPerInterview == 0 || g.Broker.MaxPerClient == 0 {
		return errors.New("-max-streams-per-interview and -max-streams-per-client must not be 0 (negative means no cap)")
	}
	return nil
}

// validateTimes checks the durations that must be positive, and the drain
// within the shutdown.
func (c *config) validateTimes() error {
	g := &c.gw
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
	return nil
}

// validatePolling checks the pollers' settings (poller.Config.Check), and
// the ceiling on upstream calls.
func (c *config) validatePolling() error {
	switch {
	case c.gw.Poller.MaxConcurrent == 0:
		return errors.New("-max-upstream-calls must be positive")
	case c.gw.MaxUpstreamCallsPerSecond < 0:
		return errors.New("-max-upstream-rate must not be negative")
	}
	return c.gw.Poller.Check(pollerFlags.name)
}

// validateCluster checks what a cluster over Redis needs: one secret and
// one upstream shared by every node, and a lease long enough to renew.
func (c *config) validateCluster() error {
	g := &c.gw
	switch {
	case g.Redis.URL == "":
		return nil
	case g.Secret == "":
		return errors.New("-redis-url needs -secret: every node of a cluster must verify the tokens the others issue")
	case g.Upstream.BaseURL == "":
		return errors.New("-redis-url needs -upstream: the nodes of a cluster must share one upstream (run pushgate-sim for a simulated one)")
	case g.Redis.LeaseTTL < 100*time.Millisecond:
		return errors.New("-lease-ttl must be at least 100ms")
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
