package sse

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/pushgate/pushgate/poller/flow"
)

// Error is an error with the HTTP status it answers. Handlers return it for
// problems of the request itself; other errors are mapped in httpError.
// The client gets Message and Code; whatever caused it goes to the log.
type Error struct {
	Status     int
	Message    string
	Code       string        // a short reason code; "" means the status's (see statusCodes)
	RetryAfter time.Duration // sent as Retry-After when positive
}

func (e *Error) Error() string { return e.Message }

func errorf(status int, msg string) *Error { return &Error{Status: status, Message: msg} }

// coded returns e with its reason code set.
func (e *Error) coded(code string) *Error { e.Code = code; return e }

// statusCodes are the reason codes of errors that name none themselves.
var statusCodes = map[int]string{
	http.StatusBadRequest:            "bad_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestTimeout:        "request_timeout",
	http.StatusConflict:              "not_finished",
	http.StatusGone:                  "session_ended",
	http.StatusRequestEntityTooLarge: "body_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "unprocessable",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusInternalServerError:   "internal_error",
	http.StatusBadGateway:            "upstream_error",
	http.StatusServiceUnavailable:    "unavailable",
}

// defaultRetry is the Retry-After of a 429 or 503 whose cause gave none.
var defaultRetry = map[int]time.Duration{
	http.StatusTooManyRequests:    5 * time.Second,
	http.StatusServiceUnavailable: 2 * time.Second,
}

// code is e's reason code.
func (e *Error) code() string {
	if e.Code != "" {
		return e.Code
	}
	if c, ok := statusCodes[e.Status]; ok {
		return c
	}
	return "error"
}

// errMalformedAnswer wraps an upstream answer sse itself found unusable.
var errMalformedAnswer = errors.New("sse: malformed upstream answer")

// Errors of the upstream (through Upstream and the poller's Source) are
// mapped by what they say of themselves, so this package need not import
// the upstream client; its errors implement these methods.
type (
	notFound     interface{ NotFound() bool }     // the interview does not exist upstream
	rateLimited  interface{ RateLimited() bool }  // the upstream asks callers to slow down
	unavailable  interface{ Unavailable() bool }  // the upstream could not answer; try again
	unauthorized interface{ Unauthorized() bool } // the upstream refused the gateway's credentials
	malformed    interface{ Malformed() bool }    // the upstream's answer broke the API's promise
	rejected     interface{ Rejected() bool }     // the upstream refused the request itself
	retryDelayer interface{ RetryDelay() time.Duration }
)

// is reports whether err, or an error it wraps, behaves as asked.
func is[T any](err error, behaves func(T) bool) bool {
	var v T
	return errors.As(err, &v) && behaves(v)
}

// httpError maps any error a handler met to the status and message the
// client sees. It is the only place that does.
func httpError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	retry := func(e *Error) *Error {
		var rd retryDelayer
		if errors.As(err, &rd) {
			e.RetryAfter = rd.RetryDelay()
		}
		return e
	}
	switch {
	case errors.Is(err, ErrTokenMissing):
		return errorf(http.StatusUnauthorized, "missing token: send X-Token, Authorization: Bearer, or the session cookie").coded("token_missing")
	case errors.Is(err, ErrTokenInvalid):
		return errorf(http.StatusUnauthorized, "invalid token").coded("token_invalid")
	case errors.Is(err, ErrTokenExpired):
		return errorf(http.StatusUnauthorized, "token expired: start a new session").coded("token_expired")
	case errors.Is(err, ErrTokenWrongInterview):
		return errorf(http.StatusForbidden, "token is for another interview").coded("token_wrong_interview")
	case is(err, notFound.NotFound):
		return errorf(http.StatusNotFound, "interview not found").coded("interview_not_found")
	case is(err, rateLimited.RateLimited):
		return retry(errorf(http.StatusTooManyRequests, "the verification service is rate limiting requests; try again later").coded("upstream_rate_limited"))
	case is(err, unavailable.Unavailable):
		return retry(errorf(http.StatusServiceUnavailable, "the verification service is unavailable; try again shortly").coded("upstream_unavailable"))
	case is(err, unauthorized.Unauthorized):
		return errorf(http.StatusBadGateway, "the verification service rejected the gateway's credentials").coded("upstream_credentials")
	case is(err, malformed.Malformed), errors.Is(err, errMalformedAnswer):
		return errorf(http.StatusBadGateway, "the verification service sent a malformed answer").coded("upstream_malformed")
	case is(err, rejected.Rejected):
		return errorf(http.StatusBadGateway, "the verification service rejected the request").coded("upstream_rejected")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, "the verification service did not answer in time").coded("upstream_timeout")
	case errors.Is(err, context.Canceled):
		return errorf(http.StatusServiceUnavailable, "request cancelled").coded("cancelled")
	case errors.Is(err, errInterviewLimit):
		return errorf(http.StatusTooManyRequests, "too many open streams for this interview; close other tabs").coded("interview_stream_limit")
	case errors.Is(err, errClientLimit):
		return errorf(http.StatusTooManyRequests, "too many open streams from this address").coded("client_stream_limit")
	case errors.Is(err, errStreamLimit):
		return &Error{Status: http.StatusServiceUnavailable, Code: "capacity", Message: "the gateway is at its stream capacity; try again shortly", RetryAfter: 5 * time.Second}
	case errors.Is(err, errDraining), errors.Is(err, flow.ErrClosed):
		return &Error{Status: http.StatusServiceUnavailable, Code: "draining", Message: "the gateway is shutting down; reconnect", RetryAfter: time.Second}
	}
	return errorf(http.StatusInternalServerError, "internal error")
}

// writeError answers with the JSON error for err and logs it.
func writeError(w http.ResponseWriter, r *http.Request, log *handlerLog, err error) {
	e := httpError(err)
	logRequestError(log, r, e, err)
	retry := e.RetryAfter
	if retry <= 0 {
		retry = defaultRetry[e.Status] // every 429 and 503 says when to come back
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(retrySeconds(retry), 10))
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Message, "code": e.code()})
}

// logRequestError logs a request's answer e, caused by err. A refusal
// (a 4xx, or a drain's 503) is logged at Info, sampled by log.refusals:
// of each kind, the first in an interval, with a count of those before it
// that were not; those go to Debug. Failures of the gateway or the
// upstream are logged each time.
func logRequestError(log *handlerLog, r *http.Request, e *Error, err error) {
	level := slog.LevelInfo
	if e.Status >= 500 && e.Code != "draining" { // a drain refuses every arrival, on purpose
		level = slog.LevelWarn
	}
	if e.Status == http.StatusInternalServerError {
		level = slog.LevelError
	}
	tpl := routeTemplate(r)
	unlogged := 0
	if level == slog.LevelInfo && log.refusals != nil {
		var logged bool
		logged, unlogged = log.refusals.admit(tpl+" "+strconv.Itoa(e.Status)+" "+e.code(), time.Now())
		if !logged {
			level = slog.LevelDebug
		}
	}
	ctx := r.Context()
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []any{"method", r.Method, "path", pathToLog(r, tpl), "status", e.Status, "err", err}
	if unlogged > 0 {
		attrs = append(attrs, "repeats_since_last", unlogged)
	}
	log.Log(ctx, level, "request failed", attrs...)
}

// routeTemplate is the path template of the route r matched; "" before
// routing, or when none matched.
func routeTemplate(r *http.Request) string {
	if route := mux.CurrentRoute(r); route != nil {
		if tpl, err := route.GetPathTemplate(); err == nil {
			return tpl
		}
	}
	return ""
}

// logPath is the path to log for r: the matched route's template, so that
// a secret in the path (a webhook's) never reaches the log. A path no
// route matched (or none yet: a refusal before routing) is logged by its
// first segment only, "/…" standing for the rest: a callback URL set up
// with a slip (a trailing slash, a double slash, a dot segment, another
// case, a proxy's prefix) carries the webhook's path secret further on,
// and a first segment of 32 bytes or more, as long as a path secret, is
// not logged either.
func logPath(r *http.Request) string {
	return pathToLog(r, routeTemplate(r))
}

// pathToLog is logPath given r's route template, tpl.
func pathToLog(r *http.Request, tpl string) string {
	if tpl != "" {
		return tpl
	}
	first, _, more := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(first) >= minWebhookSecret {
		return "/…"
	}
	if more {
		return "/" + first + "/…"
	}
	return "/" + first
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
