package simulator

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Who may use what. The upstream API checks its own credentials (API key,
// session and admin tokens). The control API (/sim/...) takes every
// request when the Simulator listens on loopback, and otherwise only those
// with the control token. The flow routes (/flow/{id}...) take the
// interview's flow key, which only its onboarding URL carries.

// flowKeyHeader carries the flow key on the steps the flow page posts.
const flowKeyHeader = "X-Flow-Key"

// controlAccess decides who may use the control API. New fixes it.
type controlAccess struct {
	addr     string // where the Simulator listens, for the refusal; "" when unknown
	loopback bool   // it listens on loopback: every request is taken
	token    string // else those with "Authorization: Bearer <token>"; "" takes none
}

func newControlAccess(addr net.Addr, token string) controlAccess {
	a := controlAccess{loopback: isLoopback(addr), token: token}
	if addr != nil {
		a.addr = addr.String()
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

// guard answers 403 to a control request that is not taken, before h sees it.
func (a controlAccess) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg := a.refused(r); msg != "" {
			writeError(w, r, http.StatusForbidden, msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refused says why a control request is not taken, "" when it is.
func (a controlAccess) refused(r *http.Request) string {
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
	case !sameSecret(bearer(r), a.token):
		return "invalid or missing control token (Authorization: Bearer <token>)"
	}
	return ""
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
