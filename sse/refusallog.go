package sse

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// handlerLog is the Handler's logger, with the sampler of the refused
// requests it logs (see logRequestError). A logger made from it (With,
// WithGroup) is a plain *slog.Logger, which writeError does not take.
type handlerLog struct {
	*slog.Logger
	refusals *refusalLog
}

// refusalLog samples the log of refused requests (see logRequestError).
// Of each kind of refusal (route, status and reason code), the first in
// each interval is logged at Info, with how many of its kind went unlogged
// before it, and the rest at Debug: a flood of bad requests then writes a
// few lines a minute, not one per request, unless the log level is debug.
// pushgate_http_requests_total still counts every answer.
type refusalLog struct {
	every time.Duration

	mu    sync.Mutex // protects kinds
	kinds map[string]*refusalKind
}

type refusalKind struct {
	next     time.Time // when the next of this kind is logged
	unlogged int       // since the last logged
}

// maxRefusalKinds bounds the kinds remembered; past it they start afresh.
// Kinds are few (routes times statuses), so it is never reached in use.
const maxRefusalKinds = 1024

func newRefusalLog(every time.Duration) *refusalLog {
	return &refusalLog{every: every, kinds: make(map[string]*refusalKind)}
}

// admit reports whether a refusal of kind is logged now, and how many of
// its kind went unlogged since the last one that was.
func (l *refusalLog) admit(kind string, now time.Time) (ok bool, unlogged int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kinds[kind]
	if k == nil {
		if len(l.kinds) >= maxRefusalKinds {
			clear(l.kinds)
		}
		k = &refusalKind{}
		l.kinds[kind] = k
	}
	if now.Before(k.next) {
		k.unlogged++
		return false, 0
	}
	unlogged, k.unlogged, k.next = k.unlogged, 0, now.Add(l.every)
	return true, unlogged
}

// refusedOrigin logs, at most once a minute, a browser request refused
// because its page's origin is not in AllowedOrigins: the one sign, on the
// gateway's side, of a page on another origin that was left out of
// -allowed-origins (the browser shows a blank page and a console error).
// Sampled as one kind, so a flood of made-up origins writes one line a
// minute; the origin is the last refused one's, cut to a sane length.
func (l *handlerLog) refusedOrigin(r *http.Request, origin string) {
	if l.refusals == nil {
		return
	}
	logged, unlogged := l.refusals.admit("refused origin", time.Now())
	if !logged {
		return
	}
	const maxOrigin = 200
	if len(origin) > maxOrigin {
		origin = origin[:maxOrigin] + "…"
	}
	attrs := []any{"origin", origin, "path", logPath(r), "fix", "if it is your page's origin, add it to -allowed-origins"}
	if unlogged > 0 {
		attrs = append(attrs, "refused_since_last", unlogged)
	}
	l.WarnContext(r.Context(), "refused a browser request: its page's origin is not in -allowed-origins", attrs...)
}
