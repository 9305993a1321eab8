package public_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/public/browsertest"
)

// TestBrowserFlowOrigins: with one flow origin, a list, or any ("*"), the
// page's CSP lets the flow load in the iframe, and Chromium gives the flow
// the camera (the Permissions-Policy header and the iframe's allow
// attribute together). When the flow moves to another origin inside the
// iframe, as a redirect would, only a list naming that origin, or "*", lets
// the page there load, and have the camera.
func TestBrowserFlowOrigins(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	browser := newBrowser(t)
	for _, tc := range []struct {
		name    string
		origins func(sim, gw string) []string // nil: the default, the simulator's origin
		allow   func(sim, gw string) string
		moved   string // what the move to the gateway's own origin gives
	}{
		{"one origin", nil,
			func(string, string) string { return "camera; microphone; geolocation; accelerometer; gyroscope" },
			"blocked by frame-src"},
		{"a list", func(sim, gw string) []string { return []string{sim, gw} },
			func(sim, gw string) string {
				to := " " + sim + " " + gw
				return "camera" + to + "; microphone" + to + "; geolocation" + to + "; accelerometer" + to + "; gyroscope" + to
			},
			"camera true"},
		{"any origin", func(string, string) []string { return []string{"*"} },
			func(string, string) string {
				return "camera *; microphone *; geolocation *; accelerometer *; gyroscope *"
			},
			"camera true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGatewayConfig(t, true, func(c *pushgate.Config, ls *pushgate.Listeners) {
				if tc.origins != nil {
					c.FlowOrigins = tc.origins("http://"+ls.Simulator.Addr().String(), "http://"+ls.Gateway.Addr().String())
				}
			})
			tb := openTab(t, browser)
			tb.start(g.url)
			if got, want := eval[string](tb, `document.getElementById('app-iframe').getAttribute('allow')`), tc.allow(g.simURL, g.url); got != want {
				t.Errorf("iframe allow=%q, want %q", got, want)
			}
			// The iframe's policy for the flow's page, as Chromium computes
			// it from the header and the allow attribute.
			if !eval[bool](tb, `document.getElementById('app-iframe').featurePolicy.allowsFeature('camera')`) {
				t.Error("the flow's page in the iframe has no camera")
			}
			// The flow loaded under the page's CSP: it moves the page on.
			tb.waitProgress(steps[0])
			tb.step(0)
			tb.CheckConsole(false)

			// The flow moves the iframe to a page on another origin, the
			// gateway's own (so the test can look into it).
			tb.Do("moving the flow to another origin", chromedp.Evaluate[chromedp.Void](`window.violations = [];
				document.addEventListener('securitypolicyviolation', e => violations.push(e.effectiveDirective));
				document.getElementById('app-iframe').contentWindow.location.href = '`+g.url+`/healthz';`))
			moved := poll[string](tb, `violations.length ? 'blocked by ' + violations[0] : (() => {
				try {
					const d = document.getElementById('app-iframe').contentDocument;
					return d && d.readyState === 'complete' ? 'camera ' + d.featurePolicy.allowsFeature('camera') : '';
				} catch (e) { return ''; }
			})()`)
			if moved != tc.moved {
				t.Errorf("the flow moved to %s: %s, want %s", g.url, moved, tc.moved)
			}
		})
	}
}

// poll is browsertest.Poll in the page's tab: it waits until expr is
// truthy in the page, and returns it.
func poll[T any](tb *tab, expr string) T {
	tb.t.Helper()
	return browsertest.Poll[T](tb.Tab, expr)
}
