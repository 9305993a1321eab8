package sse_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
)

// TestFlowOriginHeaders: the page's CSP frames the flow origins, the
// Permissions-Policy header delegates the iframe's device features to
// them, and the iframe's allow attribute asks for the same, on every
// answer: for one origin, several, or any ("*").
func TestFlowOriginHeaders(t *testing.T) {
	page := fstest.MapFS{"index.html": {Data: []byte(`<body data-iframe-allow="{{.IframeAllow}}"></body>`)}}
	const (
		cspBefore = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src "
		cspAfter  = "; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
		one       = `(self "https://flows.example")`
		two       = `(self "https://flows.example" "https://partner.example:8443")`
	)
	for _, tc := range []struct {
		name     string
		origins  []string
		frameSrc string
		policy   string
		allow    string
	}{
		{"one origin", []string{"https://flows.example"}, "https://flows.example",
			"camera=" + one + ", microphone=" + one + ", geolocation=" + one + ", accelerometer=" + one + ", gyroscope=" + one,
			"camera; microphone; geolocation; accelerometer; gyroscope"},
		{"one origin written twice, loosely", []string{"HTTPS://Flows.Example:443/", "https://flows.example"}, "https://flows.example",
			"camera=" + one + ", microphone=" + one + ", geolocation=" + one + ", accelerometer=" + one + ", gyroscope=" + one,
			"camera; microphone; geolocation; accelerometer; gyroscope"},
		{"two origins", []string{"https://flows.example", "https://partner.example:8443"}, "https://flows.example https://partner.example:8443",
			"camera=" + two + ", microphone=" + two + ", geolocation=" + two + ", accelerometer=" + two + ", gyroscope=" + two,
			"camera https://flows.example https://partner.example:8443; microphone https://flows.example https://partner.example:8443; " +
				"geolocation https://flows.example https://partner.example:8443; accelerometer https://flows.example https://partner.example:8443; " +
				"gyroscope https://flows.example https://partner.example:8443"},
		{"any origin", []string{"*"}, "*",
			"camera=*, microphone=*, geolocation=*, accelerometer=*, gyroscope=*",
			"camera *; microphone *; geolocation *; accelerometer *; gyroscope *"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, options{flowOrigins: tc.origins, page: page})
			code, _, body := g.get("/", nil)
			if want := `<body data-iframe-allow="` + tc.allow + `"></body>`; code != 200 || body != want {
				t.Errorf("page: %d %q, want %q", code, body, want)
			}
			for _, path := range []string{"/", "/healthz", "/no-such-route"} {
				_, h, _ := g.get(path, nil)
				if csp := h.Get("Content-Security-Policy"); csp != cspBefore+tc.frameSrc+cspAfter {
					t.Errorf("%s: CSP %q, want frame-src %s", path, csp, tc.frameSrc)
				}
				if pp := h.Get("Permissions-Policy"); pp != tc.policy {
					t.Errorf("%s: Permissions-Policy %q, want %q", path, pp, tc.policy)
				}
			}
		})
	}
}

// TestFlowOriginMismatchWithList: onboarding URLs on an origin the list
// does not name are counted and logged with the whole list; with "*" none
// is.
func TestFlowOriginMismatchWithList(t *testing.T) {
	for _, tc := range []struct {
		origins []string
		want    float64
		log     string
	}{
		{[]string{"https://flows.example", "https://partner.example"}, 2, "flow_origin=https://flows.example,https://partner.example"},
		{[]string{"*"}, 0, ""},
	} {
		g := newGateway(t, options{flowOrigins: tc.origins, keepLogs: true})
		for range 2 {
			if code, _, body := g.get("/onboarding-url", nil); code != 200 {
				t.Fatalf("%q: %d %s", tc.origins, code, body)
			}
		}
		if n := pollertest.Metric(t, g.metrics, "pushgate_flow_origin_mismatch_total"); n != tc.want {
			t.Errorf("%q: pushgate_flow_origin_mismatch_total = %v, want %v", tc.origins, n, tc.want)
		}
		logs := g.logs.String()
		if tc.log == "" && strings.Contains(logs, "level=ERROR") {
			t.Errorf("%q: logged an error:\n%s", tc.origins, logs)
		}
		if tc.log != "" && (strings.Count(logs, "level=ERROR") != 1 || !strings.Contains(logs, tc.log) || !strings.Contains(logs, "onboarding_url_origin="+g.simURL)) {
			t.Errorf("%q: want one error naming %s and the simulator's origin, got:\n%s", tc.origins, tc.log, logs)
		}
	}
}

// TestFlowOriginsRefused: a handler is refused, with the culprit named,
// without flow origins, with one that is not an origin, and with "*"
// among origins.
func TestFlowOriginsRefused(t *testing.T) {
	for _, tc := range []struct {
		origins []string
		want    string
	}{
		{nil, "FlowOrigins is required"},
		{[]string{}, "FlowOrigins is required"},
		{[]string{"*", "https://flows.example"}, `"*,https://flows.example" mix "*"`},
		{[]string{"https://flows.example", "*"}, `"https://flows.example,*" mix "*"`},
		{[]string{"https://flows.example/flow"}, `"https://flows.example/flow" is not an origin`},
		{[]string{"https://flows.example", "ftp://flows.example"}, `"ftp://flows.example" is not an origin`},
		{[]string{"flows.example"}, `"flows.example" is not an origin`},
		{[]string{"https://flows.example?x=1"}, `"https://flows.example?x=1" is not an origin`},
		{[]string{"https://user@flows.example"}, `"https://user@flows.example" is not an origin`},
		{[]string{"https://*.flows.example"}, `"https://*.flows.example" is not an origin`},
		{[]string{"https://flows.example https://partner.example"}, `"https://flows.example https://partner.example" is not an origin`},
		{[]string{"https://flows.example;script-src"}, `"https://flows.example;script-src" is not an origin`},
		{[]string{"https://flows.example'"}, `"https://flows.example'" is not an origin`},
		{[]string{"https://[::1;x]"}, `is not an origin`},
	} {
		// The flow origins are checked before the other parts are used:
		// stand-ins do.
		_, err := sse.New(sse.Config{Upstream: noUpstream{}, Statuses: &poller.Manager{}, Broker: &sse.Broker{}, Tokens: &sse.Tokens{}, FlowOrigins: tc.origins})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %s", tc.origins, err, tc.want)
		}
	}
}

// noUpstream is an Upstream that is never called.
type noUpstream struct{ sse.Upstream }
