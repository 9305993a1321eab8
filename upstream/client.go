package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	defaultTimeout  = 5 * time.Second
	defaultMaxBytes = 1 << 20
	// drainLimit is how much of an unread body is discarded so the connection
	// can be reused; past it, closing the connection is cheaper.
	drainLimit = 64 << 10
	// maxRetryAfter caps a Retry-After the upstream sends.
	maxRetryAfter = 24 * time.Hour
)

// Config configures a Client. Only BaseURL is required.
type Config struct {
	// BaseURL is the upstream origin, e.g. https://demo-api.incodesmile.com.
	// It must be an absolute http or https URL; a path prefix is kept.
	BaseURL string
	// APIKey is sent as x-api-key on every call, /0/omni/... calls and the
	// probe included, as the API's reference asks. Empty sends none.
	APIKey string
	// FlowID is the configurationId Start sends, as is, when its caller
	// names no flow (StartOptions.ConfigurationID). Empty sends "".
	FlowID string
	// AdminToken, when set, makes Status and Score read by interview id through
	// the admin endpoints (/omni/get/onboarding/status?id=, /omni/get/score?id=)
	// with x-api-key and the admin token in X-Incode-Hardware-Id: admin mode.
	// The token is used as it is; whoever set it renews it (admin tokens
	// expire after 24 h). When empty and AdminEmail is empty, Status and
	// Score use the session endpoints with the caller's session token.
	AdminToken string
	// AdminEmail and AdminPassword, when set (and AdminToken is not), turn
	// on admin mode with tokens the Client gets itself from
	// POST /executive/log-in: it logs in at the first admin read, logs in
	// again once three quarters of AdminTokenTTL have passed, and on a 401
	// logs in again once and retries the read.
	AdminEmail    string
	AdminPassword string
	// AdminTokenTTL is how long an admin token from a log-in lives. Zero
	// means 24h, the upstream's lifetime.
	AdminTokenTTL time.Duration
	// Timeout bounds each call, reading the answer included. Zero means 5s.
	Timeout time.Duration
	// MaxResponseBytes caps an answer body; a larger 2xx body is ErrMalformed.
	// Zero means 1 MiB.
	MaxResponseBytes int64
	// Metrics registers the Client's Prometheus collectors (calls by
	// endpoint and outcome, latency). Nil records no metrics.
	Metrics prometheus.Registerer
	// HTTPClient sends the requests. If nil, the Client uses its own client
	// with a transport tuned for many concurrent calls to one host (keep-alives,
	// 64 idle connections per host) that does not follow redirects.
	HTTPClient *http.Client
}

// Client calls the upstream onboarding API. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	apiKey  string
	flowID  string
	admin   adminAuth
	timeout time.Duration
	maxBody int64
	hc      *http.Client

	metrics   *metrics
	mu        sync.Mutex // protects unhealthy
	unhealthy error      // from the most recent call that found the upstream unavailable; nil after one that got an answer
}

// Check refuses the settings of c that cannot work, and returns the first
// refusal. Each rule of a setting lives here once: New calls Check, and a
// command calls it to check its flags before anything is built. The
// refusal names each field by name(field): New by the field's own name, a
// command by the flag that sets it. Zero values pass, as they select
// defaults; BaseURL, required, is New's to check.
func (c *Config) Check(name func(field string) string) error {
	switch {
	case (c.AdminEmail == "") != (c.AdminPassword == ""):
		return fmt.Errorf("%s and %s go together", name("AdminEmail"), name("AdminPassword"))
	case c.AdminTokenTTL < 0:
		return fmt.Errorf("%s must not be negative", name("AdminTokenTTL"))
	case c.Timeout < 0:
		return fmt.Errorf("%s must not be negative", name("Timeout"))
	case c.MaxResponseBytes < 0:
		return fmt.Errorf("%s must not be negative", name("MaxResponseBytes"))
	}
	return nil
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("upstream: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream: base URL %q is not an absolute http or https URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("upstream: base URL %q must not have a query or fragment", cfg.BaseURL)
	}
	if err := cfg.Check(func(field string) string { return field }); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	c := &Client{
		base:    u,
		apiKey:  cfg.APIKey,
		flowID:  cfg.FlowID,
		timeout: cfg.Timeout,
		maxBody: cfg.MaxResponseBytes,
		hc:      cfg.HTTPClient,
		admin:   adminAuth{fixed: cfg.AdminToken, email: cfg.AdminEmail, password: cfg.AdminPassword, ttl: cfg.AdminTokenTTL},
	}
	if c.admin.ttl == 0 {
		c.admin.ttl = 24 * time.Hour
	}
	if c.timeout == 0 {
		c.timeout = defaultTimeout
	}
	if c.maxBody == 0 {
		c.maxBody = defaultMaxBytes
	}
	if c.hc == nil {
		c.hc = newHTTPClient()
	}
	if c.metrics, err = newMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	return c, nil
}

func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport: t,
		// A redirect would carry x-api-key to wherever it points; the API
		// documents none, so a 3xx is returned as ErrMalformed instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Close releases the Client's idle keep-alive connections. The gateway
// calls it when it stops, after the last call; a later call opens new ones.
func (c *Client) Close() { c.CloseIdleConnections() }

// CloseIdleConnections closes the keep-alive connections no call is using.
// The poller calls it when the upstream comes back after an outage, so the
// next calls dial afresh instead of reusing a connection to a peer that
// may have gone away meanwhile.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Healthy returns nil unless the most recent call that reached a verdict
// found the upstream unavailable (network error, 5xx, or no answer within
// the call's deadline, whether the Client's Timeout or the caller's own);
// then it returns that call's error. Calls whose caller cancelled them
// ("gave up": context.Canceled), calls never sent (ErrNoSession, or a
// context that had already ended) do not count.
func (c *Client) Healthy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unhealthy
}

// request is one call to the upstream.
type request struct {
	op      string
	method  string
	path    string // joined onto the base URL
	query   url.Values
	body    any    // JSON-encoded when non-nil
	token   string // X-Incode-Hardware-Id; empty sends none
	session bool   // token is a session token (not an admin token)
}

// do sends rq under the Client's timeout and returns the status code and body
// of a 2xx answer, or an *Error. It records the upstream's health.
func (c *Client) do(ctx context.Context, rq request) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		// Never sent: it says nothing about the upstream.
		return 0, nil, &Error{Op: rq.op, Kind: ErrUnavailable, Err: err}
	}
	code, body, err := c.roundTrip(ctx, rq)
	if code != 0 || !errors.Is(ctx.Err(), context.Canceled) {
		// A caller that gave up (cancelled) says nothing about the
		// upstream; a deadline, the Client's or the caller's, does: it is
		// how long this node waits for an answer.
		c.mu.Lock()
		c.unhealthy = nil
		if err != nil && errors.Is(err.Kind, ErrUnavailable) {
			c.unhealthy = err
		}
		c.mu.Unlock()
	}
	if err != nil {
		return code, nil, err
	}
	return code, body, nil
}

func (c *Client) roundTrip(parent context.Context, rq request) (int, []byte, *Error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	req, err := c.newRequest(ctx, rq)
	if err != nil {
		return 0, nil, &Error{Op: rq.op, Kind: ErrRejected, Err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, noAnswer(ctx, rq.op, err)
	}
	body, tooBig, err := c.readBody(resp)
	if err != nil {
		return 0, nil, noAnswer(ctx, rq.op, err)
	}
	code := resp.StatusCode
	if code < 200 || code > 299 {
		e := &Error{
			Op:         rq.op,
			StatusCode: code,
			Kind:       kindOf(code),
			Message:    cleanMessage(errorMessage(body), c.apiKey, c.admin.fixed, c.admin.password, rq.token),
			session:    rq.session,
		}
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			e.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return code, nil, e
	}
	if tooBig {
		return code, nil, malformed(rq.op, code, fmt.Errorf("answer exceeds %d bytes", c.maxBody))
	}
	return code, body, nil
}

func (c *Client) newRequest(ctx context.Context, rq request) (*http.Request, error) {
	u := c.base.JoinPath(rq.path)
	u.RawQuery = rq.query.Encode()
	var body io.Reader = http.NoBody
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("api-version", "1.0")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.apiKey != "" {
		req.Header.Set("x-api-key", c.apiKey)
	}
	if rq.token != "" {
		req.Header.Set("X-Incode-Hardware-Id", rq.token)
	}
	return req, nil
}

// readBody reads at most maxBody bytes, reports whether there were more, and
// drains and closes the body so the connection can be reused.
func (c *Client) readBody(resp *http.Response) (body []byte, tooBig bool, err error) {
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, false, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	if int64(len(body)) > c.maxBody {
		return body[:c.maxBody], true, nil
	}
	return body, false, nil
}

// noAnswer describes a call that got no complete answer. When the call's
// context ended, its error is kept so errors.Is finds context.Canceled or
// context.DeadlineExceeded.
func noAnswer(ctx context.Context, op string, err error) *Error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	return &Error{Op: op, Kind: ErrUnavailable, Err: err}
}

func malformed(op string, code int, err error) *Error {
	return &Error{Op: op, StatusCode: code, Kind: ErrMalformed, Err: err}
}

// RetryAfter parses a Retry-After value, delay seconds or an HTTP date,
// as the wait from now: zero when absent, unreadable or past, at most 24
// hours.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(min(secs, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), maxRetryAfter)
}
