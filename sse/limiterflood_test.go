package sse_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pushgate/pushgate/sse"
)

// floodFrom sends n requests to the handler in process, each from another
// address as the trusted proxy in front reports it, and returns the
// answers by status.
func floodFrom(g *gateway, n int, method, path string, header http.Header) map[int]int {
	codes := map[int]int{}
	base := netip.MustParseAddr("10.0.0.0").As4()
	for i := range n {
		a := base
		a[1], a[2], a[3] = byte(i>>16), byte(i>>8), byte(i)
		req := httptest.NewRequest(method, path, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("X-Forwarded-For", netip.AddrFrom4(a).String())
		rec := httptest.NewRecorder()
		g.handler.ServeHTTP(rec, req)
		codes[rec.Code]++
	}
	return codes
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestLimiterFloodStaysBounded: 100,000 /onboarding-url calls from as many
// addresses leave the per-address limit's map within its bound. With the
// node's ceiling on (the default), the refused calls make no entry at all;
// with it off, the map holds MaxLimiterKeys at most, the least recent
// forgotten first; so does the count of wrong webhook credentials.
func TestLimiterFloodStaysBounded(t *testing.T) {
	const flood = 100_000
	over := 2 * sse.MaxLimiterKeys // past the bound, and quicker
	t.Run("node ceiling on", func(t *testing.T) {
		// A ceiling that refills once in 10,000 minutes: the node lets its
		// burst through and no more, however long the flood takes.
		const burst = 100
		g := newGateway(t, options{handler: sse.Config{TrustedProxies: loopbackProxy, SessionsPerMinute: 10, SessionBurst: 5,
			NodeSessionsPerMinute: 0.0001, NodeSessionBurst: burst}})
		before := heapInUse()
		codes := floodFrom(g, flood, http.MethodGet, "/onboarding-url", nil)
		grown := int64(heapInUse()) - int64(before)
		keys, _ := g.handler.LimiterKeys()
		t.Logf("answers %v; %d addresses held; heap grew %d KiB", codes, keys, grown>>10)
		if codes[http.StatusTooManyRequests] < flood-burst {
			t.Fatalf("answers %v: want all but the node's burst refused", codes)
		}
		if keys > burst {
			t.Fatalf("%d addresses held after a flood from %d, want no more than the node let through (%d)", keys, flood, burst)
		}
	})
	t.Run("node ceiling off", func(t *testing.T) {
		// The upstream is never called: under a ceiling of one call in
		// 1000 s, a session start that cannot get its turn within the
		// request's time fails at once.
		g := newGateway(t, options{
			handler:         sse.Config{TrustedProxies: loopbackProxy, SessionsPerMinute: 10, SessionBurst: 5, NodeSessionsPerMinute: -1, RequestTimeout: 100 * time.Millisecond},
			maxUpstreamRate: 0.001,
		})
		before := heapInUse()
		codes := floodFrom(g, over, http.MethodGet, "/onboarding-url", nil)
		grown := int64(heapInUse()) - int64(before)
		keys, _ := g.handler.LimiterKeys()
		t.Logf("answers %v; %d addresses held; heap grew %d KiB", codes, keys, grown>>10)
		if keys > sse.MaxLimiterKeys {
			t.Fatalf("%d addresses held after a flood from %d, want at most %d", keys, over, sse.MaxLimiterKeys)
		}
		if grown > 16<<20 {
			t.Fatalf("the heap grew by %d MiB", grown>>20)
		}
	})
	t.Run("wrong webhook credentials", func(t *testing.T) {
		g := newGateway(t, options{handler: sse.Config{TrustedProxies: loopbackProxy, WebhookClientID: clientID, WebhookClientSecret: clientSecret}})
		codes := floodFrom(g, over, http.MethodPost, "/webhooks/token", http.Header{"Authorization": {basic("X", "Y")}})
		_, keys := g.handler.LimiterKeys()
		t.Logf("answers %v; %d addresses held", codes, keys)
		if codes[http.StatusUnauthorized] != over || keys > sse.MaxLimiterKeys {
			t.Fatalf("answers %v, %d addresses held; want every call 401 (one guess each) and at most %d held", codes, keys, sse.MaxLimiterKeys)
		}
	})
}
