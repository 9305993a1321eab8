package gateway_test

import (
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
)

// TestMetricsRegistered: /metrics shows the build, the Go runtime, the
// process, and the metrics of every part New wires (upstream client,
// pollers, broker, handler), on the gateway's listener or, with a metrics
// listener, there alone, beside /healthz and /readyz.
func TestMetricsRegistered(t *testing.T) {
	t.Parallel()
	version := gateway.Build{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.99"}
	families := []string{
		`pushgate_build_info{goversion="go1.99",revision="abc123",version="v1.2.3"} 1`,
		"# TYPE go_goroutines gauge",
		"# TYPE pushgate_upstream_calls_total counter",
		"# TYPE pushgate_pollers_active gauge",
		"# TYPE pushgate_sse_connections gauge",
		"# TYPE pushgate_http_requests_total counter",
	}
	if runtime.GOOS == "linux" {
		families = append(families, "# TYPE process_start_time_seconds gauge")
	}
	scrape := func(t *testing.T, url string) {
		t.Helper()
		resp, body := get(t, url, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		for _, f := range families {
			if !strings.Contains(body, f) {
				t.Errorf("GET %s lacks %s", url, f)
			}
		}
	}
	t.Run("on the gateway's listener", func(t *testing.T) {
		t.Parallel()
		g := serve(t, gateway.Config{Build: version})
		open(t, g.base, start(t, g.base)).NextStatus(t) // every part at work
		scrape(t, g.base+"/metrics")
	})
	t.Run("on a listener of their own", func(t *testing.T) {
		t.Parallel()
		ls := listen(t)
		metrics, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls.Metrics = metrics
		g := build(t, gateway.Config{Build: version}, ls)
		run(t, g)
		base, own := "http://"+ls.Gateway.Addr().String(), "http://"+metrics.Addr().String()
		open(t, base, start(t, base)).NextStatus(t)
		scrape(t, own+"/metrics")
		if resp, _ := get(t, base+"/metrics", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /metrics on the gateway's listener: %s, want 404", resp.Status)
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			if resp, body := get(t, own+path, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s on the metrics listener: %s %s, want 200", path, resp.Status, body)
			}
		}
	})
}
