package sse_test

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pushgate/pushgate/poller/pollertest"
	"github.com/pushgate/pushgate/sse"
)

// TestStartLanguage: the page asks for a language; the flow starts in the
// listed one it names, else the listed one of the same language, else the
// first listed. A malformed ask, and any start option only the server
// side may set, are refused with 400 before a session is paid for.
func TestStartLanguage(t *testing.T) {
	g := newGateway(t, options{handler: sse.Config{Languages: []string{"en-US", "es-ES", "pt-BR"}}})
	for _, tc := range []struct{ ask, want string }{
		{"", "en-US"}, {"es-ES", "es-ES"}, {"pt-br", "pt-BR"}, {"es-MX", "es-ES"}, {"es", "es-ES"}, {"fr-FR", "en-US"},
	} {
		code, _, body := g.get("/onboarding-url?language="+tc.ask, nil)
		var s struct{ InterviewID, Language string }
		if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil || s.Language != tc.want {
			t.Fatalf("language %q: %d %s, want %s", tc.ask, code, body, tc.want)
		}
		if info, _ := g.sim.Session(s.InterviewID); info.Start.Language != tc.want {
			t.Fatalf("language %q: the upstream started %q, want %s", tc.ask, info.Start.Language, tc.want)
		}
	}
	starts := g.sim.Stats().Start
	for _, q := range []string{"language=en_US%0A", "language=" + strings.Repeat("x", 40), "externalCustomerId=cust-1", "redirectionUrl=https://evil.example", "customFields=x"} {
		if code, _, body := g.get("/onboarding-url?"+q, nil); code != 400 || jsonError(t, body) == "" {
			t.Fatalf("?%s: %d %s, want 400", q, code, body)
		}
	}
	if n := g.sim.Stats().Start; n != starts {
		t.Fatalf("refused requests started %d upstream sessions", n-starts)
	}
}

// TestIframePermissions: the page's iframe asks for the features the
// Permissions-Policy header grants the flow origin, and the list is
// configurable.
func TestIframePermissions(t *testing.T) {
	page := fstest.MapFS{"index.html": {Data: []byte(`<body data-iframe-allow="{{.IframeAllow}}"></body>`)}}
	for _, tc := range []struct {
		features []string
		allow    string
	}{
		{nil, "camera; microphone; geolocation; accelerometer; gyroscope"},
		{[]string{"camera", "microphone"}, "camera; microphone"},
	} {
		g := newGateway(t, options{handler: sse.Config{IframePermissions: tc.features}, page: page})
		code, h, body := g.get("/", nil)
		if code != 200 || body != `<body data-iframe-allow="`+tc.allow+`"></body>` {
			t.Fatalf("page: %d %q, want allow %q", code, body, tc.allow)
		}
		if got, want := strings.Count(h.Get("Permissions-Policy"), `=(self "`+g.simURL+`")`), len(strings.Split(tc.allow, "; ")); got != want {
			t.Fatalf("Permissions-Policy %q grants %d features, want %d", h.Get("Permissions-Policy"), got, want)
		}
	}
}

// TestFlowOriginMismatch: onboarding URLs on another origin than the
// configured flow origin (the page's CSP would leave the iframe blank) are
// logged with the origin to configure, and counted.
func TestFlowOriginMismatch(t *testing.T) {
	g := newGateway(t, options{flowOrigins: []string{"https://flows.example"}, keepLogs: true})
	for range 3 {
		if code, _, body := g.get("/onboarding-url", nil); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	if n := pollertest.Metric(t, g.metrics, "pushgate_flow_origin_mismatch_total"); n != 3 {
		t.Fatalf("pushgate_flow_origin_mismatch_total = %v, want 3", n)
	}
	logs := g.logs.String()
	if strings.Count(logs, "level=ERROR") != 1 || !strings.Contains(logs, "onboarding_url_origin="+g.simURL) || !strings.Contains(logs, "flow_origin=https://flows.example") {
		t.Fatalf("want one error naming both origins, got:\n%s", logs)
	}
}
