package sse

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// maxBody caps request bodies; no route needs one. The upstream's
// webhooks get more room: one it sends larger (a field it adds) would be
// refused, and retried for half an hour.
const (
	maxBody        = 4 << 10
	maxWebhookBody = 64 << 10
)

// bodyLimit is the most a request to path may carry.
func bodyLimit(path string) int64 {
	if strings.HasPrefix(path, "/webhooks/") {
		return maxWebhookBody
	}
	return maxBody
}

// securityHeaders are sent on every answer: the page frames only the flow
// origins and delegates the device features the flow needs (camera,
// microphone, geolocation, motion sensors: Config.IframePermissions) to
// them alone. Each allowlist names self too: a document can delegate only
// a feature it has itself (Permissions Policy's inherited policy), so
// without self browsers deny the feature in the iframe as well; the page
// itself never asks for one. With anyOrigin it frames any http(s) page and
// delegates the features to any origin.
func securityHeaders(flowOrigins []string, frameAncestors string, features []string) map[string]string {
	frameSrc, allowlist := anyOrigin, anyOrigin
	if !framesAny(flowOrigins) {
		quoted := make([]string, len(flowOrigins))
		for i, o := range flowOrigins {
			quoted[i] = strconv.Quote(o)
		}
		frameSrc, allowlist = strings.Join(flowOrigins, " "), "(self "+strings.Join(quoted, " ")+")"
	}
	policy := make([]string, len(features))
	for i, f := range features {
		policy[i] = f + "=" + allowlist
	}
	return map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
			"connect-src 'self'; frame-src " + frameSrc + "; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors " + frameAncestors,
		"Permissions-Policy":     strings.Join(policy, ", "),
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	}
}

// guard runs before routing, on every request: it sets the security
// headers, answers CORS preflight requests, and caps the request body.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request) (handled bool) {
	for k, v := range h.headers {
		w.Header().Set(k, v)
	}
	stream := r.URL.Path == "/events" && r.Method == http.MethodGet
	h.deadlines(w, r, stream)
	if stream && hasBody(r) {
		writeError(w, r, h.log, errorf(http.StatusBadRequest, "a stream request takes no body"))
		return true
	}
	if preflight, allowed := h.cors.apply(w, r); preflight {
		switch {
		case strings.HasPrefix(r.URL.Path, apiPrefix):
			writeError(w, r, h.log, errorf(http.StatusForbidden, "the server API takes no browser calls: call it from your backend, where the API token stays"))
			return true
		case !allowed:
			origin := r.Header.Get("Origin")
			h.log.refusedOrigin(r, origin)
			writeError(w, r, h.log, errorf(http.StatusForbidden, "origin "+origin+" may not call this API: it is not in -allowed-origins"))
			return true
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	limit := bodyLimit(r.URL.Path)
	if r.ContentLength > limit {
		writeError(w, r, h.log, errorf(http.StatusRequestEntityTooLarge, "request body too large: this route takes at most "+strconv.FormatInt(limit, 10)+" bytes"))
		return true
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return false
}

// deadlines bounds a request. A body must arrive within ReadTimeout: one
// declared and never sent would otherwise hold the connection for good
// (the server waits for it even when the handler reads none). Only a
// request with a body gets that read deadline: on one without, it would
// also end the server's watch for the client going away, and with it the
// request's context. The answer to a request other than a stream must be
// written within ReadTimeout plus twice RequestTimeout (a server API read
// makes two upstream calls). Past either, the connection is closed. A
// ResponseWriter that cannot set deadlines (a test's recorder) is left as
// it is.
func (h *Handler) deadlines(w http.ResponseWriter, r *http.Request, stream bool) {
	now := time.Now()
	rc := http.NewResponseController(w)
	if hasBody(r) {
		_ = rc.SetReadDeadline(now.Add(h.cfg.ReadTimeout))
	}
	if !stream {
		_ = rc.SetWriteDeadline(now.Add(h.cfg.ReadTimeout + 2*h.cfg.RequestTimeout))
	}
}

// hasBody reports whether r declares a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 || len(r.TransferEncoding) > 0
}

// cors grants cross-origin access to the listed origins only, with
// credentials, and answers their preflight requests. Every answer varies
// by Origin, so caches never hand one origin's grant to another.
type cors struct {
	origins []string
}

const (
	corsMethods = "GET, POST"
	corsHeaders = "X-Token, Authorization, Last-Event-ID, Content-Type"
)

// apply adds the CORS headers for r's origin when it is listed. It
// reports whether r is a preflight request (which the caller then answers:
// 204 when allowed, 403 when not) and whether its origin is allowed.
func (c cors) apply(w http.ResponseWriter, r *http.Request) (preflight, allowed bool) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	preflight = r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != ""
	// The server API is for backends: browsers get no grant to read it, so
	// an API token pasted into a page is of no use there.
	if origin == "" || !slices.Contains(c.origins, origin) || strings.HasPrefix(r.URL.Path, apiPrefix) {
		return preflight, false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Expose-Headers", "Retry-After") // when to come back, for the browser client
	if preflight {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", "600")
	}
	return preflight, true
}

// countRequests routes r and counts its answer by route and status code in
// pushgate_http_requests_total.
func (h *Handler) countRequests(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, route: "unmatched"}
	h.router.ServeHTTP(rec, r)
	h.metrics.requests.WithLabelValues(rec.route, strconv.Itoa(rec.status())).Inc()
}

// nameRoute is router middleware (it runs once a route matched): it puts
// the route's path template on the statusRecorder, for metric labels that
// stay few whatever paths clients send.
func nameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*statusRecorder); ok {
			if tpl, err := mux.CurrentRoute(r).GetPathTemplate(); err == nil {
				rec.route = tpl
			}
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status code of an answer. Unwrap keeps
// http.ResponseController (flushes, write deadlines) working through it.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	route string // the matched route's path template
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// sameSite wraps a browser route: a request another site makes the
// browser send is refused with 403 (code cross_site), so no website can
// make its visitors start paid sessions or read anything here. See
// crossSite for what passes.
func (h *Handler) sameSite(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if why, origin := h.crossSite(r); why != "" {
			if origin != "" {
				h.log.refusedOrigin(r, origin)
			}
			writeError(w, r, h.log, errorf(http.StatusForbidden, "cross-site request refused: "+why).coded("cross_site"))
			return
		}
		next(w, r)
	}
}

// crossSite says why r looks sent by a browser for another site's page,
// and that page's origin when r tells it, or "" when it does not. It
// reads the first of these that r carries:
//
//   - Origin, which browsers send on every cross-origin fetch and every
//     POST: it must be the gateway's own or listed in AllowedOrigins;
//   - Sec-Fetch-Site, which they send to HTTPS and localhost origins: it
//     must not be cross-site;
//   - Referer, the only one left on a GET over plain HTTP (an <img>, a
//     <script>, a prefetch, a no-cors fetch): its origin must be the
//     gateway's own or listed.
//
// A browser's request (a User-Agent of "Mozilla/...", as every browser
// sends and no page can change) with none of the three is refused too: a
// page can have the browser leave Referer out (referrerpolicy
// "no-referrer"), while a fetch of the gateway's own page keeps it (a
// same-origin request carries its full Referer under every policy but
// no-referrer). A client that is no browser (curl, the integrator's
// servers) sends none of them, and passes.
func (h *Handler) crossSite(r *http.Request) (why, origin string) {
	if origin := r.Header.Get("Origin"); origin != "" {
		if !h.allowedOrigin(origin, r) {
			return "the origin " + origin + " is not in -allowed-origins", origin
		}
		return "", ""
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		if site == "cross-site" {
			return "another site made this browser send it", ""
		}
		return "", ""
	}
	if referer := r.Header.Get("Referer"); referer != "" {
		u, err := url.Parse(referer)
		if err != nil || u.Host == "" {
			return "its Referer is no page's address", ""
		}
		if origin := serializedOrigin(u); !h.allowedOrigin(origin, r) {
			return "a page at " + origin + ", not in -allowed-origins, made this browser send it", origin
		}
		return "", ""
	}
	if strings.HasPrefix(r.Header.Get("User-Agent"), "Mozilla/") {
		return "a browser's request without Origin, Sec-Fetch-Site or Referer, as another site's page can make it send", ""
	}
	return "", ""
}

// allowedOrigin reports whether a page at origin may call r's route: it
// is the gateway's own, or listed in AllowedOrigins.
func (h *Handler) allowedOrigin(origin string, r *http.Request) bool {
	return h.ownOrigin(origin, r) || slices.Contains(h.cors.origins, origin)
}

// ownOrigin reports whether origin is the one r was sent to: the same
// host and port (the scheme may differ behind a proxy that ends TLS).
func (h *Handler) ownOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
