// Package upstream is the gateway's HTTP client of the upstream onboarding
// API (Incode Omni). It speaks that API and nothing else, and is the first
// step of the flow upstream -> poller -> sse -> page.
//
//	cmd/pushgate/gateway ──Config──▶ New ──▶ *Client
//	poller ──Status──▶ Client ──HTTPS──▶ upstream (or upstream/simulator)
//	sse    ──Start/OnboardingURL/Score (through gateway's adapter)──▶ Client
//
// Every call runs under its own timeout (Config.Timeout) inside the caller's
// context, reads at most Config.MaxResponseBytes, and fails with an *Error
// whose Kind is one of the Err* sentinels, so callers decide with errors.Is
// whether to back off (ErrRateLimited, ErrUnavailable) or give up; the same
// errors answer by method (NotFound, Unavailable, RetryDelay, ...) for
// callers that map them by behaviour without importing this package.
// Healthy reports whether the last call found the upstream unavailable
// (a deadline counts, a caller's cancellation does not); Probe asks the
// one cheap question that needs no session (probe.go), so a caller can
// keep Healthy current without traffic.
//
// Admin mode (Config.AdminToken, or Config.AdminEmail and AdminPassword)
// reads by interview id with an admin token; with credentials the Client
// logs in by itself, renews the token before it expires, and on a 401
// renews once and retries (admin.go). The calls are in calls.go and
// probe.go, the transport in client.go, the decoding of answers in
// decode.go (fuzzed on its own), the kinds of failure in errors.go and
// the Prometheus collectors in metrics.go.
//
// The Client never retries otherwise: when and how often to ask is the caller's call.
// Every call carries the API key (x-api-key), as the API's reference asks.
// Tokens and the API key travel in headers only and never appear in errors.
package upstream
