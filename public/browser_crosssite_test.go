package public_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chromedp/chromedp"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/public/browsertest"
)

// guidePage is the integration guide's page code for step 1 ("Get
// onboarding URL"), as written, with the guide's backend
// (https://you.backend.app) replaced by the gateway's origin; it notes
// what it got in window.guide.
const guidePage = `// Dynamic URL: Call the backend to generate it and in
// the frontend and just consume the URL
const response = await fetch(` + "`GATEWAY/onboarding-url`" + `,{});
const {url, token, interviewId} = await response.json();
window.guide = {status: response.status, url, token, interviewId};
`

// TestBrowserCrossSiteLoadsOverHTTP runs Chromium against a gateway on
// plain HTTP under a host name that is not localhost, where it sends no
// Sec-Fetch-* headers. Another site's page loads /onboarding-url every way
// a page can without CORS (<img>, <script>, a prefetch, a no-cors fetch,
// with and without a Referer): none starts a session. The guide's own page
// code, fetch(url, {}) from the gateway's origin, starts one.
func TestBrowserCrossSiteLoadsOverHTTP(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGatewayConfig(t, true, func(c *pushgate.Config, _ *pushgate.Listeners) {
		// guide.js comes from the proxy below, which knows the address the
		// browser uses.
		c.HTTP.Page = fstest.MapFS{"index.html": {Data: []byte(`<!doctype html><title>guide</title><script type="module" src="/guide.js"></script>`)}}
	})
	// The browser reaches the gateway through a proxy that keeps the Host
	// it was asked for and notes the headers of each /onboarding-url call,
	// by the load that made it (?via=).
	target, _ := url.Parse(g.url)
	var mu sync.Mutex                // protects seen
	seen := map[string]http.Header{} // by via
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host }}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/onboarding-url":
			mu.Lock()
			seen[r.URL.Query().Get("via")] = r.Header.Clone()
			mu.Unlock()
		case "/guide.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write([]byte(strings.ReplaceAll(guidePage, "GATEWAY", "http://"+r.Host)))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	_, port, _ := net.SplitHostPort(front.Listener.Addr().String())
	gateway := "http://gateway.test:" + port
	loads := []string{
		`<img src="GW/onboarding-url?via=img">`,
		`<img referrerpolicy="no-referrer" src="GW/onboarding-url?via=img-no-referrer">`,
		`<script src="GW/onboarding-url?via=script"></script>`,
		`<script referrerpolicy="no-referrer" src="GW/onboarding-url?via=script-no-referrer"></script>`,
		`<link rel="prefetch" href="GW/onboarding-url?via=prefetch">`,
		`<script>fetch("GW/onboarding-url?via=no-cors", {mode: "no-cors"});` +
			`fetch("GW/onboarding-url?via=no-cors-no-referrer", {mode: "no-cors", referrerPolicy: "no-referrer"})</script>`,
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><title>another site</title>" + strings.ReplaceAll(strings.Join(loads, ""), "GW", gateway)))
	}))
	t.Cleanup(evil.Close)
	_, evilPort, _ := net.SplitHostPort(evil.Listener.Addr().String())

	tb := openTab(t, newBrowserResolving(t, "gateway.test", "evil.test"))
	before := g.sim.Stats().Start
	tb.Do("opening another site's page", chromedp.Navigate("http://evil.test:"+evilPort+"/"))
	// Every load but the prefetch, which Chromium may skip, must have
	// reached the gateway.
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		_, prefetched := seen["prefetch"]
		mu.Unlock()
		if prefetched {
			n--
		}
		if n == len(loads) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s, %d of the other site's %d loads reached the gateway", n, len(loads))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := g.sim.Stats().Start - before; n != 0 {
		t.Fatalf("another site's page started %d sessions, want none", n)
	}
	mu.Lock()
	for via, h := range seen {
		if h.Get("Origin") != "" || h.Get("Sec-Fetch-Site") != "" {
			t.Errorf("%s: Chromium sent Origin %q, Sec-Fetch-Site %q over plain HTTP: the test no longer covers a load without either", via, h.Get("Origin"), h.Get("Sec-Fetch-Site"))
		}
		t.Logf("%s: Referer %q, Accept %q", via, h.Get("Referer"), h.Get("Accept"))
	}
	mu.Unlock()

	tb.Do("opening the guide's page", chromedp.Navigate(gateway+"/"))
	type answer struct {
		Status      int    `json:"status"`
		URL         string `json:"url"`
		InterviewID string `json:"interviewId"`
	}
	got := poll[answer](tb, "window.guide")
	if got.Status != http.StatusOK || got.URL == "" || got.InterviewID == "" {
		t.Fatalf("the guide's fetch(url, {}): %+v, want 200 with the URL and interview", got)
	}
	if n := g.sim.Stats().Start - before; n != 1 {
		t.Fatalf("%d sessions started, want the guide's one", n)
	}
	mu.Lock()
	h := seen[""]
	mu.Unlock()
	if h.Get("Origin") != "" || h.Get("Sec-Fetch-Site") != "" || !strings.HasPrefix(h.Get("Referer"), gateway+"/") {
		t.Errorf("the guide's fetch sent Origin %q, Sec-Fetch-Site %q, Referer %q: want only a Referer of its page", h.Get("Origin"), h.Get("Sec-Fetch-Site"), h.Get("Referer"))
	}
}

// newBrowserResolving is newBrowser with hosts resolved to 127.0.0.1:
// pages on them are neither HTTPS nor localhost, so Chromium sends them no
// Sec-Fetch-* headers, as to any site on plain HTTP.
func newBrowserResolving(t *testing.T, hosts ...string) *browsertest.Browser {
	t.Helper()
	rules := make([]string, len(hosts))
	for i, h := range hosts {
		rules[i] = "MAP " + h + " 127.0.0.1"
	}
	return newBrowser(t,
		chromedp.Flag("host-resolver-rules", strings.Join(rules, ", ")),
		chromedp.Flag("disable-features", "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"), // keep http:// as typed
	)
}
