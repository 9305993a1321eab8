package simulator

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Who may use what. The upstream API checks its own credentials (API key,
// session and admin tokens). The control API (/sim/...) takes every
// request when the Simulator listens on loopback, and otherwise only those
// with the control token. The flow routes (/flow/{id}...) take the
// interview's flow key, which only its onboarding URL carries.
//
// The control API is for programs, never for browsers, and a browser on
// the same machine reaches a loopback listener too: a page of any site
// could post to it, or rebind its own host name to 127.0.0.1. So the
// control API also refuses every request with an Origin header (browsers
// send one on every cross-origin request and on every POST), takes bodies
// as application/json only (which a page cannot send cross-site without
// a preflight, which it refuses), and, when loopback is what lets a
// request in, refuses a Host that is not loopback or the public URL's
// host (a rebound name). A request with the control token is taken from
// any Host: a page cannot know the token.

// flowKeyHeader carries the flow key on the steps the flow page posts.
const flowKeyHeader = "X-Flow-Key"

// controlAccess decides who may use the control API. New fixes it.
type controlAccess struct {
	addr     string // where the Simulator listens, for the refusal; "" when unknown
	loopback bool   // it listens on loopback: every request is taken
	token    string // else those with "Authorization: Bearer <token>"; "" takes none
	// publicHost is the host name of Config.PublicURL, which a request let
	// in by loopback may name besides loopback hosts; "" when unset.
	publicHost string
}

func newControlAccess(addr net.Addr, token, publicURL string) controlAccess {
	a := controlAccess{loopback: isLoopback(addr), token: token}
	if addr != nil {
		a.addr = addr.String()
	}
	if u, err := url.Parse(publicURL); err == nil {
		a.publicHost = strings.ToLower(u.Hostname())
	}
	return a
}

// who says whom the control API answers, for logs: "anyone on loopback",
// "control token holders" or "nobody (off beyond loopback without a
// control token)".
func (a controlAccess) who() string {
	switch {
	case a.loopback:
		return "anyone on loopback"
	case a.token != "":
		return "control token holders"
	}
	return "nobody (off beyond loopback without a control token)"
}

// guard answers a control request that is not taken, before h sees it:
// 403 for who or where it comes from, 415 for a body that is not JSON.
func (a controlAccess) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, msg := a.refused(r); code != 0 {
			writeError(w, r, code, msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refused says why a control request is not taken, and with which status;
// 0 when it is.
func (a controlAccess) refused(r *http.Request) (int, string) {
	tokened := sameSecret(bearer(r), a.token)
	if msg := a.unauthorized(tokened); msg != "" {
		return http.StatusForbidden, msg
	}
	if r.Header["Origin"] != nil {
		return http.StatusForbidden, "the control API takes no requests from web pages (this one has an Origin header): call it from a program"
	}
	if !tokened && !a.knownHost(r.Host) {
		return http.StatusForbidden, "the control API answers on loopback host names only (localhost, 127.0.0.1, [::1]) or the simulator's public URL, not Host " + quoteHost(r.Host)
	}
	if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
		return http.StatusUnsupportedMediaType, "the control API takes JSON only: send Content-Type: application/json"
	}
	return 0, ""
}

// unauthorized says why a control request is not let in at all, "" when
// it is: on loopback, or with the control token.
func (a controlAccess) unauthorized(tokened bool) string {
	switch {
	case a.loopback:
		return ""
	case a.token == "":
		where := "an unknown address"
		if a.addr != "" {
			where = a.addr
		}
		return "the control API is off: the simulator listens on " + where + ", beyond loopback; " +
			"set a control token (pushgate -sim-control-token or PUSHGATE_SIM_CONTROL_TOKEN, pushgate-sim -control-token) " +
			"and send it as Authorization: Bearer <token>"
	case !tokened:
		return "invalid or missing control token (Authorization: Bearer <token>)"
	}
	return ""
}

// knownHost reports whether a request's Host names this machine's loopback
// (localhost and its subdomains, loopback IPs) or the public URL's host:
// a name an attacker's DNS cannot point here, as it can its own.
func (a controlAccess) knownHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || host == a.publicHost
}

// quoteHost quotes a Host for a refusal, cut short if long.
func quoteHost(host string) string {
	if len(host) > 64 {
		host = host[:64] + "..."
	}
	return strconv.Quote(host)
}

// isJSON reports whether a Content-Type is application/json (parameters,
// such as charset, aside).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// isLoopback reports whether a listener's address is a loopback IP. An
// unspecified address (0.0.0.0, ::) listens beyond loopback; nil, a host
// name or a non-IP address counts as beyond loopback too.
func isLoopback(addr net.Addr) bool {
	if addr == nil {
		return false
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// bearer returns the token of an "Authorization: Bearer <token>" header,
// "" without one.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// sameSecret compares a secret a request sent with the expected one in
// constant time; an empty one never matches.
func sameSecret(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// flowInterview resolves the interview a flow route names and checks the
// flow key the request gave: 404 for an unknown or deleted interview, 403
// for a missing key or another interview's, 410 for an expired flow, 0
// when the route may act on it.
func (s *Simulator) flowInterview(id, key string) (interview, int) {
	iv, ok := s.lookup(id)
	switch {
	case !ok:
		return interview{}, http.StatusNotFound
	case !sameSecret(key, iv.flowKey):
		return interview{}, http.StatusForbidden
	case iv.deleted:
		return interview{}, http.StatusNotFound
	case iv.status == StatusExpired:
		return interview{}, http.StatusGone
	}
	return iv, 0
}

// flowStep wraps a step the flow page posts: it runs h only for a known
// interview and a request whose X-Flow-Key is that interview's flow key.
func (s *Simulator) flowStep(h func(http.ResponseWriter, *http.Request, interview)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iv, code := s.flowInterview(r.PathValue("id"), r.Header.Get(flowKeyHeader))
		switch code {
		case 0:
			h(w, r, iv)
		case http.StatusForbidden:
			writeError(w, r, code, "invalid or missing flow key ("+flowKeyHeader+"): it is the key parameter of the interview's onboarding URL")
		case http.StatusGone:
			writeError(w, r, code, ErrFlowExpired.Error())
		default:
			writeError(w, r, code, "interview not found")
		}
	})
}
