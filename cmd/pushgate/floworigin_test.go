package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// TestFlowOriginFlag: -flow-origin, or PUSHGATE_FLOW_ORIGIN, takes one
// origin, a comma-separated list, or "*".
func TestFlowOriginFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want []string
	}{
		{nil, "", nil}, // the gateway's default (TestFlowOriginDefaults)
		{[]string{"-flow-origin", "https://flows.example"}, "", []string{"https://flows.example"}},
		{[]string{"-flow-origin", "https://flows.example, https://partner.example:8443,"}, "", []string{"https://flows.example", "https://partner.example:8443"}},
		{nil, " * ", []string{"*"}},
		{[]string{"-flow-origin", "https://flows.example"}, "*", []string{"https://flows.example"}}, // the flag wins
	} {
		env := func(k string) string { return map[string]string{"PUSHGATE_FLOW_ORIGIN": tc.env}[k] }
		c, err := parseConfig(tc.args, env, io.Discard)
		if err != nil || !slices.Equal(c.gw.FlowOrigins, tc.want) {
			t.Errorf("%q, PUSHGATE_FLOW_ORIGIN=%q: %q %v, want %q", tc.args, tc.env, c.gw.FlowOrigins, err, tc.want)
		}
	}
}

// TestFlowOriginRefusedAtStart: a -flow-origin that is not a list of
// origins, or that mixes "*" with origins, stops pushgate at start with an
// error naming it.
func TestFlowOriginRefusedAtStart(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"*,https://flows.example", `mix "*"`},
		{"https://flows.example,https://flows.example/flow", `"https://flows.example/flow" is not an origin`},
		{"ftp://flows.example", `"ftp://flows.example" is not an origin`},
		{"flows.example", `"flows.example" is not an origin`},
	} {
		cfg, err := parseConfig([]string{"-flow-origin", tc.value}, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := gateway.Listen("127.0.0.1:0", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		err = run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), &ls)
		ls.Gateway.Close()
		ls.Simulator.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-flow-origin %q: %v, want an error with %s", tc.value, err, tc.want)
		}
	}
}

// TestFlowOriginDefaults: without -flow-origin, the page frames the
// built-in simulator's origin; with -upstream, the upstream's own origin,
// with a warning that the flow pages usually live elsewhere. "*" frames
// any page.
func TestFlowOriginDefaults(t *testing.T) {
	in := start(t)
	if csp := header(t, in.base, "Content-Security-Policy"); !strings.Contains(csp, "; frame-src "+in.sim+";") {
		t.Errorf("with the simulator: CSP %q, want frame-src %s", csp, in.sim)
	}
	if strings.Contains(in.logs.String(), "-flow-origin is not set") {
		t.Errorf("with the simulator: warned that -flow-origin is not set:\n%s", in.logs)
	}

	star := start(t, "-flow-origin", "*")
	if csp := header(t, star.base, "Content-Security-Policy"); !strings.Contains(csp, "; frame-src *;") {
		t.Errorf("-flow-origin '*': CSP %q, want frame-src *", csp)
	}
	if pp := header(t, star.base, "Permissions-Policy"); pp != "camera=*, microphone=*, geolocation=*, accelerometer=*, gyroscope=*" {
		t.Errorf("-flow-origin '*': Permissions-Policy %q", pp)
	}

	sim := simulator.New(simulator.Config{APIKey: "flow-origin-key"})
	t.Cleanup(sim.Close)
	up := httptest.NewServer(sim)
	t.Cleanup(up.Close)
	cfg, err := parseConfig([]string{"-upstream", up.URL, "-api-key", "flow-origin-key", "-flow-id", "flow"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := gateway.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)), &ls) }()
	csp := header(t, "http://"+ls.Gateway.Addr().String(), "Content-Security-Policy")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csp, "; frame-src "+up.URL+";") {
		t.Errorf("with -upstream: CSP %q, want frame-src %s", csp, up.URL)
	}
	if l := logs.String(); !strings.Contains(l, "-flow-origin is not set") || !strings.Contains(l, "framing="+up.URL) {
		t.Errorf("with -upstream: want a warning that -flow-origin is not set, naming %s; got:\n%s", up.URL, l)
	}
}

// header returns a header of the gateway's answer to GET /healthz.
func header(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get(name)
}
