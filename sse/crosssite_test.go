package sse_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/sse"
)

// chromium is the User-Agent of a desktop Chromium, as every browser's
// starts: "Mozilla/5.0 ...".
const chromium = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"

// chromiumOverHTTP is a request as Chromium sends it to a gateway on plain
// HTTP, not localhost: no Sec-Fetch-* (those go to HTTPS and localhost
// origins only), and no Origin on a GET that is not a CORS request. The
// pairs name the headers that vary by load.
func chromiumOverHTTP(pairs ...string) http.Header {
	h := http.Header{
		"User-Agent":      {chromium},
		"Accept-Encoding": {"gzip, deflate"},
		"Accept-Language": {"en-US,en;q=0.9"},
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Set(pairs[i], pairs[i+1])
	}
	return h
}

// TestCrossSitePageLoadsOverHTTP: over plain HTTP, another site's page
// can make its visitors' browsers load /onboarding-url with an <img>, a
// <script>, a prefetch or a no-cors fetch, which carry neither Origin nor
// Sec-Fetch-Site; each is refused by its Referer, or for having none, and
// starts no session. The integration guide's own page code, fetch(url, {})
// from the gateway's origin, and clients that are no browsers still start
// sessions.
func TestCrossSitePageLoadsOverHTTP(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{AllowedOrigins: []string{allowedOrigin}}})
	own := g.url + "/"
	const evil = "http://evil.example/"
	// The Accept headers of Chromium 156 (public's browser test logs them).
	image := "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
	document := "text/html,application/xhtml+xml,application/xml;q=0.9,image/jxl,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
	for _, tc := range []struct {
		name   string
		header http.Header
		code   int
	}{
		{"<img> on another site", chromiumOverHTTP("Accept", image, "Referer", evil), 403},
		{`<img referrerpolicy="no-referrer"> on another site`, chromiumOverHTTP("Accept", image), 403},
		{"<script> on another site", chromiumOverHTTP("Accept", "*/*", "Referer", evil), 403},
		{`<script referrerpolicy="no-referrer">`, chromiumOverHTTP("Accept", "*/*"), 403},
		{`<link rel="prefetch">`, chromiumOverHTTP("Accept", document, "Sec-Purpose", "prefetch", "Referer", evil), 403},
		{`fetch(url, {mode: "no-cors", referrerPolicy: "no-referrer"})`, chromiumOverHTTP("Accept", "*/*"), 403},
		{"a link on another site", chromiumOverHTTP("Accept", document, "Upgrade-Insecure-Requests", "1", "Referer", evil), 403},
		{"a Referer on a look-alike host", chromiumOverHTTP("Accept", "*/*", "Referer", "http://"+strings.TrimPrefix(g.url, "http://")+".evil.example/"), 403},
		{"a Referer that is no address", chromiumOverHTTP("Accept", "*/*", "Referer", "about:client"), 403},
		// The guide's page, on the gateway's origin: fetch(url, {}) is a
		// same-origin GET, with the page's full address as Referer.
		{"the guide's fetch(url, {})", chromiumOverHTTP("Accept", "*/*", "Referer", own+"index.html?step=1"), 200},
		{"a page on a listed origin, no-cors", chromiumOverHTTP("Accept", "*/*", "Referer", allowedOrigin+"/checkout"), 200},
		{"curl", http.Header{"User-Agent": {"curl/8.5.0"}, "Accept": {"*/*"}}, 200},
		{"a server's HTTP client", nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := g.sim.Stats().Start
			code, _, body := g.get("/onboarding-url", tc.header)
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			started := g.sim.Stats().Start - before
			if tc.code == 403 && (started != 0 || !strings.Contains(body, `"code":"cross_site"`)) {
				t.Fatalf("refused, yet %d sessions started upstream; body %s", started, body)
			}
		})
	}
}
