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
// (and dodge every per-address limit) or claim TLS.

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
// it walks the forwarded chain (RFC 7239 Forwarded, else ClientIPHeader,
// X-Forwarded-For by default) from the right, past the trusted proxies,
// to the first address none of them is: the client as the outermost
// trusted proxy saw it. Otherwise, and when the chain says nothing usable,
// it is the peer's address.
func (h *Handler) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !h.trusted(peer) {
		return peer
	}
	chain := forwardedFor(r, h.cfg.ClientIPHeader)
	for i := len(chain) - 1; i >= 0; i-- {
		if !h.trusted(chain[i]) || i == 0 {
			return chain[i]
		}
	}
	return peer
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
	if proto := forwardedParam(r, "proto"); proto != "" {
		return strings.EqualFold(proto, "https")
	}
	v := r.Header.Values("X-Forwarded-Proto")
	if len(v) == 0 {
		return false
	}
	list := strings.Split(v[len(v)-1], ",")
	return strings.EqualFold(strings.TrimSpace(list[len(list)-1]), "https")
}

// forwardedFor lists the addresses of the forwarded chain, client first:
// the for= parameters of Forwarded when present, else the entries of
// header (X-Forwarded-For when empty). Entries may be bare addresses,
// ip:port, [ipv6]:port or quoted; unusable ones are left out.
func forwardedFor(r *http.Request, header string) []netip.Addr {
	var raw []string
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		for _, elem := range splitAll(fwd, ",") {
			for _, pair := range strings.Split(elem, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(k, "for") {
					raw = append(raw, v)
				}
			}
		}
	} else {
		if header == "" {
			header = "X-Forwarded-For"
		}
		raw = splitAll(r.Header.Values(header), ",")
	}
	var out []netip.Addr
	for _, v := range raw {
		if a, ok := parseNode(v); ok {
			out = append(out, a)
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
