package sse

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// A request's client address and scheme, as a reverse proxy in front may
// report them. Forwarded headers are believed only from the addresses in
// Config.TrustedProxies: from anyone else a client could name any address
// (and dodge every per-address limit) or claim TLS. And only the header
// the operator named (ClientIPHeader) is read: a proxy passes on headers
// it does not set itself, so any other one may be the client's own.

// peerAddr is the address of the connection's other end.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, _ := netip.ParseAddr(r.RemoteAddr)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// trusted reports whether a is one of the trusted proxies.
func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP returns the address a request comes from. From a trusted proxy
// it walks the forwarded chain of ClientIPHeader (X-Forwarded-For by
// default; "Forwarded" reads RFC 7239's for=) from the right, past the
// trusted proxies, to the first address none of them is: the client as
// the outermost trusted proxy saw it. An entry it cannot read (a proxy's
// "unknown" or obfuscated id) ends the walk at the last trusted address:
// what lies left of it is the client's to write. Otherwise it is the
// peer's address.
func (h *Handler) clientIP(r *http.Request) netip.Addr {
	addr := peerAddr(r)
	if !h.trusted(addr) {
		return addr
	}
	chain := forwardedFor(r, h.ipHeader())
	for i := len(chain) - 1; i >= 0; i-- {
		next, ok := parseNode(chain[i])
		if !ok {
			return addr
		}
		if addr = next; !h.trusted(addr) {
			return addr
		}
	}
	return addr
}

// ipHeader is the header the trusted proxies write the client's address
// chain to.
func (h *Handler) ipHeader() string {
	if h.cfg.ClientIPHeader == "" {
		return "X-Forwarded-For"
	}
	return h.cfg.ClientIPHeader
}

// clientAddr is clientIP as a string.
func (h *Handler) clientAddr(r *http.Request) string { return h.clientIP(r).String() }

// clientKey is the key of a client in per-client limits and caps: its
// address, or for IPv6 its /64, which one subscriber typically holds
// whole (an address per request would otherwise be a new client each
// time).
func (h *Handler) clientKey(r *http.Request) string {
	a := h.clientIP(r)
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// overTLS reports whether the request reached the client's side over TLS:
// it arrived here over TLS, or a trusted proxy says it did.
func (h *Handler) overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !h.trusted(peerAddr(r)) {
		return false
	}
	if strings.EqualFold(h.ipHeader(), "Forwarded") {
		return strings.EqualFold(forwardedParam(r, "proto"), "https")
	}
	v := r.Header.Values("X-Forwarded-Proto")
	if len(v) == 0 {
		return false
	}
	list := strings.Split(v[len(v)-1], ",")
	return strings.EqualFold(strings.TrimSpace(list[len(list)-1]), "https")
}

// forwardedFor lists the entries of the forwarded chain in header,
// client first: the for= parameters when header is Forwarded, else its
// comma-separated entries.
func forwardedFor(r *http.Request, header string) []string {
	if !strings.EqualFold(header, "Forwarded") {
		return splitAll(r.Header.Values(header), ",")
	}
	var out []string
	for _, elem := range splitAll(r.Header.Values("Forwarded"), ",") {
		found := false
		for _, pair := range strings.Split(elem, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(k, "for") {
				out, found = append(out, v), true
			}
		}
		if !found {
			out = append(out, "") // an element without for=: unreadable, it ends the walk
		}
	}
	return out
}

// forwardedParam returns the last value of a parameter of the Forwarded
// header (the one the nearest proxy set), "" when absent.
func forwardedParam(r *http.Request, name string) string {
	value := ""
	for _, elem := range splitAll(r.Header.Values("Forwarded"), ",") {
		for _, pair := range strings.Split(elem, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(k, name) {
				value = strings.Trim(v, `"`)
			}
		}
	}
	return value
}

// parseNode reads one forwarded address: 192.0.2.1, 192.0.2.1:443,
// "[2001:db8::1]:443", 2001:db8::1; quoted or not.
func parseNode(v string) (netip.Addr, bool) {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		return a.Unmap(), true
	}
	if host, _, err := net.SplitHostPort(v); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// splitAll splits every value on sep and trims the parts.
func splitAll(values []string, sep string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, sep) {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}
