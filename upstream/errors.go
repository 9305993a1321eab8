package upstream

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Kinds of failure. Every error returned by Client is an *Error whose Kind is
// one of these, so callers branch with errors.Is.
var (
	ErrNotFound     = errors.New("upstream: not found")        // 404
	ErrUnauthorized = errors.New("upstream: unauthorized")     // 401, 403
	ErrRateLimited  = errors.New("upstream: rate limited")     // 429
	ErrUnavailable  = errors.New("upstream: unavailable")      // 5xx, connection errors, timeouts, no answer
	ErrMalformed    = errors.New("upstream: malformed answer") // bad JSON, missing fields, oversized body, unexpected status
	ErrRejected     = errors.New("upstream: request rejected") // other 4xx
	ErrNoSession    = errors.New("upstream: no session token")
)

// maxMessage caps Error.Message, in bytes.
const maxMessage = 200

// Error describes one failed call. It never carries the API key or a token.
// A call that got no answer has Kind ErrUnavailable, the caller's own
// cancellation included: errors.Is(err, context.Canceled) tells that apart.
type Error struct {
	Op         string        // "start", "onboarding-url", "status", "score"
	StatusCode int           // 0 when no HTTP answer
	RetryAfter time.Duration // from Retry-After on 429 and 503; 0 when absent
	Message    string        // upstream's "message" (else "error") field, truncated
	Kind       error         // one of the Err* sentinels
	Err        error         // underlying cause, may be nil

	session bool // the call carried a session token, not an admin token
}

// Error reads like `upstream: status: unavailable: HTTP 503: <message>`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("upstream: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "upstream: "))
	} else {
		b.WriteString("error")
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// RetryDelay is how long the upstream asked callers to wait (RetryAfter).
// Callers that back off read it through an interface of their own.
func (e *Error) RetryDelay() time.Duration { return e.RetryAfter }

// The methods below tell what kind of failure e is, for callers that map
// errors by behaviour instead of importing this package's sentinels.

// NotFound reports that the interview does not exist upstream, or that the
// gateway holds no session token to read it with.
func (e *Error) NotFound() bool { return e.Kind == ErrNotFound || e.Kind == ErrNoSession }

// RateLimited reports that the upstream asked callers to slow down (429).
func (e *Error) RateLimited() bool { return e.Kind == ErrRateLimited }

// Unavailable reports that the upstream could not answer: 5xx, a network
// error or a timeout. Trying again later may succeed.
func (e *Error) Unavailable() bool { return e.Kind == ErrUnavailable }

// Unauthorized reports that the upstream refused the gateway's credentials.
func (e *Error) Unauthorized() bool { return e.Kind == ErrUnauthorized }

// Malformed reports that the upstream's answer was not what the API
// promises.
func (e *Error) Malformed() bool { return e.Kind == ErrMalformed }

// SessionEnded says whether the upstream has forgotten the interview's
// session for good: "not_found" when a status or score read answered that
// the interview does not exist (404), "expired" when a read with a session
// token was refused (401: the session token is no longer valid); "" for
// any other failure. A 401 in admin mode is about the gateway's own
// credentials, not the session.
func (e *Error) SessionEnded() string {
	if e.Op != "status" && e.Op != "score" {
		return ""
	}
	switch {
	case e.StatusCode == 404:
		return "not_found"
	case e.StatusCode == 401 && e.session:
		return "expired"
	}
	return ""
}

// Rejected reports that the upstream refused the request itself (a 4xx
// other than those above).
func (e *Error) Rejected() bool { return e.Kind == ErrRejected }

// Unwrap returns Kind and Err, so errors.Is matches both the sentinel and the
// cause (for example context.DeadlineExceeded).
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// kindOf maps an HTTP status that is not 2xx to a sentinel.
func kindOf(code int) error {
	switch {
	case code == 404:
		return ErrNotFound
	case code == 401 || code == 403:
		return ErrUnauthorized
	case code == 429:
		return ErrRateLimited
	case code >= 500:
		return ErrUnavailable
	case code >= 400:
		return ErrRejected
	default: // 1xx and 3xx: the API promises neither.
		return ErrMalformed
	}
}

// cleanMessage truncates an upstream message, drops control characters and
// blanks out secrets the upstream may have echoed.
func cleanMessage(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(msg))
	if len(msg) <= maxMessage {
		return msg
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}
