package sse

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config wires a Handler. Fields marked required must be set.
type Config struct {
	Upstream Upstream // required; starts sessions and reads scores
	Statuses Statuses // required; reads and watches statuses, and says whether the node is ready
	Broker   *Broker  // required; the Publisher of Statuses
	Tokens   *Tokens  // required
	// FlowOrigins are the origins of the onboarding flow pages shown in
	// the iframe (e.g. "https://demo-onboarding.incodesmile.com"), several
	// when a flow moves between origins, or "*" alone for any page, as the
	// upstream's own iframe sample grants. Required (empty is an error):
	// the page's CSP frames only them, and Permissions-Policy and the
	// iframe's allow attribute grant the IframePermissions to them alone.
	FlowOrigins []string
	// Page is served at "/" (index.html and its assets). Nil serves no
	// page. index.html is a template: {{.IframeAllow}} is the iframe's
	// allow attribute (see IframePermissions and FlowOrigins).
	Page fs.FS
	// IframePermissions are the device features the flow in the iframe
	// may use: the iframe's allow attribute names them, and the
	// Permissions-Policy header delegates them to FlowOrigins alone. Empty
	// means camera, microphone, geolocation, accelerometer and gyroscope,
	// as the upstream's flows need.
	IframePermissions []string
	// Languages the flow may start in; the page asks for one (?language=),
	// and a language not listed gets the first. Empty means en-US only.
	Languages []string
	// Flows are the upstream flows (configurationIds) sessions start in:
	// POST /v1/sessions may name one of them, and the first is the
	// default, which every browser's session (/onboarding-url) runs.
	// Each is 1 to 128 bytes of printable ASCII without spaces or
	// commas, listed once. Empty means the upstream's own default, and
	// POST /v1/sessions then takes no configurationId.
	Flows []string
	// AllowedOrigins may call the API and open streams from other origins,
	// with credentials (CORS). Empty grants no other origin.
	AllowedOrigins []string
	// FrameAncestors is the CSP frame-ancestors source list: who may frame
	// the page. Empty means 'self'.
	FrameAncestors string
	// TrustedProxies are the reverse proxies whose forwarded headers are
	// believed: the client's address (ClientIPHeader) and whether it came
	// over TLS (X-Forwarded-Proto, or Forwarded's proto=). From any other
	// peer those headers are ignored. Empty believes none: the peer is
	// the client.
	TrustedProxies []netip.Prefix
	// ClientIPHeader names the one header the trusted proxies write the
	// client's address chain to; "Forwarded" reads RFC 7239's for= and
	// proto=. Empty means X-Forwarded-For. It needs TrustedProxies.
	ClientIPHeader string
	// SessionsPerMinute limits /onboarding-url, which starts a paid
	// upstream session, per client address; SessionBurst calls may come at
	// once. Zero means 10 per minute and a burst of 5; a negative rate
	// turns the limit off.
	SessionsPerMinute float64
	SessionBurst      int
	// NodeSessionsPerMinute caps the sessions /onboarding-url starts on
	// this node, from all addresses together, NodeSessionBurst at once:
	// many addresses (a botnet, or a site making its visitors call it)
	// cannot run up the upstream bill faster. Zero means 600 a minute and a
	// burst of 100; a negative rate turns the ceiling off.
	NodeSessionsPerMinute float64
	NodeSessionBurst      int
	// ScoreReadsPerMinute limits /fetch-score per browser token, with
	// ScoreBurst reads at once. Zero means 30 a minute and a burst of 10;
	// a negative rate turns the limit off.
	ScoreReadsPerMinute float64
	ScoreBurst          int
	// BackendSessionsOnly turns the anonymous /onboarding-url off (404):
	// only the integrator's backend starts sessions, through the server
	// API. The production setting; the demo page needs it false.
	BackendSessionsOnly bool
	// APITokens turn on the server API under /v1 for callers presenting
	// one of them as "Authorization: Bearer <token>". Several allow
	// rotation. Each is at least 16 bytes of printable ASCII without
	// spaces or commas. Empty turns the server API off (404).
	APITokens []string
	// APIRequestsPerMinute is the server API's rate ceiling per API
	// token, with APIBurst requests at once; it is separate from the
	// browsers' limits. Zero means 1200 a minute and a burst of 100; a
	// negative rate turns the ceiling off.
	APIRequestsPerMinute float64
	APIBurst             int
	// WebhookSecret turns on POST /webhooks/onboarding-status, where the
	// upstream pushes status changes, for calls with "Authorization:
	// Bearer <WebhookSecret>", and POST /webhooks/onboarding-status/<WebhookSecret>
	// for an upstream that sends no Authorization header. At least 32
	// bytes, as WebhookClientSecret.
	WebhookSecret string
	// WebhookClientID and WebhookClientSecret turn on OAuth 2.0 client
	// credentials for webhook calls: POST /webhooks/token issues access
	// tokens, valid for WebhookTokenTTL (zero: 1h), that
	// POST /webhooks/onboarding-status takes as bearers. With neither
	// these nor WebhookSecret, the webhook routes are off.
	WebhookClientID     string
	WebhookClientSecret string
	WebhookTokenTTL     time.Duration
	// WebhookFailuresPerMinute limits webhook calls and webhook token
	// requests with wrong credentials, per client address: after
	// WebhookFailureBurst of them, the address gets 429 (with Retry-After)
	// on every webhook route until its allowance refills, this many a
	// minute. Calls with the right credentials never count. Zero means 5 a
	// minute and a burst of 10; a negative rate turns the limit off.
	WebhookFailuresPerMinute float64
	WebhookFailureBurst      int
	// WebhookHeaderName and WebhookHeaderValue turn on POST
	// /webhooks/onboarding-status for calls that carry this header with
	// this value (at least 32 bytes, compared in constant time): the
	// static custom header set in the upstream's dashboard. Empty: off.
	WebhookHeaderName  string
	WebhookHeaderValue string
	// Relay, when set, gets every webhook the handler takes and the
	// external ids sessions start with, and turns on GET /v1/relay/failed
	// and POST /v1/relay/failed/{id}/redeliver. Nil relays nothing.
	Relay Relay
	// WebhookSources, when not empty, are the only client addresses
	// webhook calls are taken from.
	WebhookSources []netip.Prefix
	// Metrics registers the Handler's Prometheus collectors (requests by
	// route and code, rate-limit refusals). Nil records no metrics.
	Metrics prometheus.Registerer
	// MetricsHandler is served at GET /metrics. Nil serves no metrics.
	MetricsHandler http.Handler
	// SecureCookie marks the session cookie Secure even when the request
	// did not arrive over TLS (set it behind a TLS-terminating proxy).
	SecureCookie bool
	// RequestTimeout bounds the upstream work of one non-streaming
	// request. Zero means 10s.
	RequestTimeout time.Duration
	// ReadTimeout is the time a non-streaming request has to send its
	// body; its whole handling gets ReadTimeout plus RequestTimeout, after
	// which its connection is closed. Streams keep their own rules. Zero
	// means 10s.
	ReadTimeout time.Duration
	// Logger receives request errors; refusals (4xx) are sampled: of
	// each kind, the first in a minute at Info, the others at Debug. Nil
	// means slog.Default().
	Logger *slog.Logger
}

var (
	featurePattern  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
	languagePattern = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$`)
	apiTokenPattern = regexp.MustCompile(`^[!-+\--~]{16,256}$`) // printable ASCII but space and comma
)

// serializedOrigin is an origin as browsers send it in Origin: scheme and
// host in lower case, without the scheme's default port.
func serializedOrigin(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if h, port, err := net.SplitHostPort(host); err == nil && (scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return scheme + "://" + host
}

// setDefaults checks c (see Check) and fills the zero fields with their
// defaults; it returns the first refusal.
func (c *Config) setDefaults() (err error) {
	if c.Upstream == nil || c.Statuses == nil || c.Broker == nil || c.Tokens == nil {
		return errors.New("sse: Upstream, Statuses, Broker and Tokens are required")
	}
	if c.FlowOrigins, err = normalFlowOrigins(c.FlowOrigins); err != nil { // a copy: the caller's stays as it is
		return err
	}
	if err := c.Check(fieldName); err != nil {
		return fmt.Errorf("sse: %w", err)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WebhookTokenTTL == 0 {
		c.WebhookTokenTTL = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.FrameAncestors == "" {
		c.FrameAncestors = "'self'"
	}
	if len(c.IframePermissions) == 0 {
		c.IframePermissions = []string{"camera", "microphone", "geolocation", "accelerometer", "gyroscope"}
	}
	if len(c.Languages) == 0 {
		c.Languages = []string{"en-US"}
	}
	c.setLimitDefaults()
	c.AllowedOrigins = normalAllowedOrigins(c.AllowedOrigins)
	return nil
}

// fieldName names a Config field as it is: New's refusals name fields so.
func fieldName(field string) string { return field }

// Check refuses the settings of c that cannot work, and returns the first
// refusal. Each rule of a setting lives here once: New calls Check, and a
// command calls it to check its flags before anything is built. The
// refusal names each field by name(field): New by the field's own name
// ("sse: WebhookSecret must be ..."), a command by the flag that sets it
// ("-webhook-secret must be ..."). Zero values pass, as they select
// defaults; the required parts and FlowOrigins are New's to check.
func (c *Config) Check(name func(field string) string) error {
	for _, check := range []func(name func(string) string) error{c.checkWebhooks, c.checkCallers, c.checkPage} {
		if err := check(name); err != nil {
			return err
		}
	}
	return nil
}

// setLimitDefaults fills the rate limits left zero: per minute, and the
// burst.
func (c *Config) setLimitDefaults() {
	for _, d := range []struct {
		perMinute *float64
		burst     *int
		rate      float64
		atOnce    int
	}{
		{&c.SessionsPerMinute, &c.SessionBurst, 10, 5},
		{&c.NodeSessionsPerMinute, &c.NodeSessionBurst, 600, 100},
		{&c.ScoreReadsPerMinute, &c.ScoreBurst, 30, 10},
		{&c.APIRequestsPerMinute, &c.APIBurst, 1200, 100},
		{&c.WebhookFailuresPerMinute, &c.WebhookFailureBurst, 5, 10},
	} {
		if *d.perMinute == 0 {
			*d.perMinute = d.rate
		}
		if *d.burst == 0 {
			*d.burst = d.atOnce
		}
	}
}

// checkWebhooks checks the webhook's credentials: its secret, its OAuth
// client, its custom header.
func (c *Config) checkWebhooks(name func(string) string) error {
	if (c.WebhookClientID == "") != (c.WebhookClientSecret == "") {
		return fmt.Errorf("%s and %s go together", name("WebhookClientID"), name("WebhookClientSecret"))
	}
	for _, s := range []struct{ field, value string }{{"WebhookSecret", c.WebhookSecret}, {"WebhookClientSecret", c.WebhookClientSecret}} {
		if s.value != "" && len(s.value) < minWebhookSecret {
			return fmt.Errorf("%s must be at least %d bytes (e.g. openssl rand -hex 32): a shorter one can be guessed", name(s.field), minWebhookSecret)
		}
	}
	if c.WebhookHeaderName == "" && c.WebhookHeaderValue == "" {
		return nil
	}
	return checkWebhookHeader(c.WebhookHeaderName, c.WebhookHeaderValue, name)
}

// checkCallers checks how callers are known: the client address behind
// trusted proxies, and the server API's tokens.
func (c *Config) checkCallers(name func(string) string) error {
	if c.ClientIPHeader != "" && len(c.TrustedProxies) == 0 {
		return fmt.Errorf("%s needs %s: without them any client could name its own address", name("ClientIPHeader"), name("TrustedProxies"))
	}
	for _, t := range c.APITokens {
		if !apiTokenPattern.MatchString(t) {
			return fmt.Errorf("%s: each API token must be 16 to 256 bytes of printable ASCII without spaces or commas", name("APITokens"))
		}
	}
	return nil
}

// checkPage checks who may frame and call the page, and what the flow in
// its iframe may use and start in: device features, languages, flows.
func (c *Config) checkPage(name func(string) string) error {
	if strings.ContainsAny(c.FrameAncestors, ";,\r\n") {
		return fmt.Errorf("%s %q must be a space-separated source list", name("FrameAncestors"), c.FrameAncestors)
	}
	for _, o := range c.AllowedOrigins {
		if _, ok := parseOrigin(o); !ok {
			return fmt.Errorf("%s: %q is not an origin like https://host[:port]", name("AllowedOrigins"), o)
		}
	}
	for _, f := range c.IframePermissions {
		if !featurePattern.MatchString(f) {
			return fmt.Errorf("%s: %q is not a Permissions-Policy feature name", name("IframePermissions"), f)
		}
	}
	for _, l := range c.Languages {
		if !languagePattern.MatchString(l) {
			return fmt.Errorf("%s: %q is not a language tag like en-US", name("Languages"), l)
		}
	}
	return checkFlows(c.Flows, name)
}

// parseOrigin parses an allowed origin, like https://host[:port]; ok is
// false for anything else.
func parseOrigin(o string) (u *url.URL, ok bool) {
	u, err := url.Parse(o)
	return u, err == nil && u.Scheme != "" && u.Host != "" && u.Path == "" && o == u.Scheme+"://"+u.Host
}

// normalAllowedOrigins returns Config.AllowedOrigins, which Check took, as
// browsers send them in Origin, in a copy: the caller's stay as they are.
func normalAllowedOrigins(list []string) []string {
	out := slices.Clone(list)
	for i, o := range out {
		u, _ := parseOrigin(o)
		out[i] = serializedOrigin(u)
	}
	return out
}

// minWebhookSecret is the shortest webhook secret taken (WebhookSecret,
// WebhookClientSecret, WebhookHeaderValue): 32 bytes, out of reach of
// guessing, even unthrottled.
const minWebhookSecret = 32

// headerName is what an HTTP field name looks like (RFC 9110's token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// reservedHeaders are the names a webhook's custom header cannot take:
// the server or a proxy in front drops or rewrites them (Host, framing,
// hop-by-hop headers), or the call needs them for itself.
var reservedHeaders = []string{"Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Keep-Alive", "Te", "Trailer", "Upgrade", "Expect"}

// checkWebhookHeader checks a custom header of webhook calls (Config's
// WebhookHeaderName and WebhookHeaderValue): header must be an HTTP header
// name a call keeps on its way here (not Host, a framing or hop-by-hop
// header, nor Proxy-*), and value a secret of at least 32 bytes, with no
// space or tab around it (HTTP drops those) and no line break.
func checkWebhookHeader(header, value string, name func(string) string) error {
	canon := http.CanonicalHeaderKey(header)
	switch {
	case !headerName.MatchString(header):
		return fmt.Errorf("%s: %q is not an HTTP header name", name("WebhookHeaderName"), header)
	case slices.Contains(reservedHeaders, canon) || strings.HasPrefix(canon, "Proxy-"):
		return fmt.Errorf("%s: %q is a header the server or a proxy drops or rewrites; pick another, e.g. X-Incode-Hook", name("WebhookHeaderName"), header)
	case len(value) < minWebhookSecret:
		return fmt.Errorf("%s: the header's value must be at least %d bytes (e.g. openssl rand -hex 32)", name("WebhookHeaderValue"), minWebhookSecret)
	case strings.TrimSpace(value) != value || strings.ContainsAny(value, "\r\n\x00"):
		return fmt.Errorf("%s: the header's value has spaces around it, or a line break or NUL in it", name("WebhookHeaderValue"))
	}
	return nil
}
