package sse

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/poller/pollertest"
)

// TestCheckFlowOriginList: an onboarding URL on any listed origin is
// framed, however its scheme and host are cased and whether it names the
// scheme's default port; a URL on any other origin, or on none, is counted.
// With "*" nothing is.
func TestCheckFlowOriginList(t *testing.T) {
	framed := []string{
		"https://flows.example/flow/1?uuid=x",
		"HTTPS://Flows.Example:443/flow/2",
		"https://partner.example:8443/step",
	}
	blank := []string{
		"http://flows.example/flow/1",         // another scheme
		"https://partner.example/step",        // another port
		"https://evil.flows.example/flow",     // a subdomain
		"https://flows.example.evil.test/x",   // a suffix
		"/flow/1",                             // no origin
		"https://flows.example:bad-port/flow", // unparsable
	}
	for _, tc := range []struct {
		origins []string
		want    float64
	}{
		{[]string{"https://flows.example", "https://partner.example:8443"}, float64(len(blank))},
		{[]string{"*"}, 0},
	} {
		reg := prometheus.NewRegistry()
		h := &Handler{} // draining: its readiness reads nothing else
		h.unready.Store(true)
		m, err := newHandlerMetrics(reg, h)
		if err != nil {
			t.Fatal(err)
		}
		origins, err := normalFlowOrigins(tc.origins)
		if err != nil {
			t.Fatal(err)
		}
		s := &sessions{flowOrigins: origins, log: quiet, metrics: m}
		for _, u := range framed {
			s.checkFlowOrigin(u)
		}
		if n := pollertest.Metric(t, reg, "pushgate_flow_origin_mismatch_total"); n != 0 {
			t.Errorf("%q: URLs on listed origins counted %v times as mismatches", tc.origins, n)
		}
		for _, u := range blank {
			s.checkFlowOrigin(u)
		}
		if n := pollertest.Metric(t, reg, "pushgate_flow_origin_mismatch_total"); n != tc.want {
			t.Errorf("%q: pushgate_flow_origin_mismatch_total = %v, want %v", tc.origins, n, tc.want)
		}
	}
}
