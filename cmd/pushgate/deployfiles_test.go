package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/cmd/pushgate/gateway/tlstest"
	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
	"github.com/pushgate/pushgate/relay/relaytest"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// deployFiles are the dashboard and the alerting rules shipped for
// pushgate, relative to this package's directory.
var deployFiles = []string{"../../deploy/grafana/pushgate.json", "../../deploy/prometheus/alerts.yaml"}

// TestDeployFilesNameServedMetrics: every metric the dashboard and the
// alerting rules name is served on /metrics by a node that has just
// started, in the configuration that serves the most metrics (a cluster
// node on a real redis-server, relaying to a backend) and has only
// answered its load balancer's readiness probe. That is the node an alert
// first sees: a rule on a name it does not serve stays silent, and a rule
// on a vector whose series appear only with the first event misses that
// event. A vector with no series is absent from /metrics altogether,
// HELP and TYPE lines included, so its known label values must be
// initialised at start for it to pass.
func TestDeployFilesNameServedMetrics(t *testing.T) {
	t.Parallel() // a gateway of its own; no time bound
	used := deployMetricNames(t, deployFiles)
	if len(used) < 30 {
		t.Fatalf("found %d metric names in %v, want the dashboard's and the rules' (over 30): %v", len(used), deployFiles, slices.Sorted(maps.Keys(used)))
	}
	text := scrapeFreshClusterNode(t)
	for _, name := range unservedMetrics(text, slices.Sorted(maps.Keys(used))) {
		t.Errorf("%s (named in %s) is not served on /metrics of a node just started: not defined, or a vector with no series until something happens (initialise its known label values)",
			name, strings.Join(used[name], ", "))
	}

	// The check itself: it tells a name that is not served, does not
	// take a gauge for a histogram, and takes a histogram's series.
	probe := []string{"pushgate_no_such_metric_total", "pushgate_sse_connections_count", "pushgate_relay_delivery_seconds_bucket", "pushgate_sse_connections", "go_goroutines"}
	if got, want := unservedMetrics(text, probe), []string{"pushgate_no_such_metric_total", "pushgate_sse_connections_count"}; !slices.Equal(got, want) {
		t.Errorf("unservedMetrics(%v) = %v, want %v", probe, got, want)
	}
}

// TestUnservedMetrics checks the checker on scrapes written by hand.
func TestUnservedMetrics(t *testing.T) {
	const text = `# HELP a_total A counter.
# TYPE a_total counter
a_total 3
# HELP lat_seconds A histogram.
# TYPE lat_seconds histogram
lat_seconds_bucket{le="+Inf"} 0
lat_seconds_sum 0
lat_seconds_count 0
# HELP g A gauge whose name ends like a histogram's series.
# TYPE g_count gauge
g_count 1
# HELP empty_total A family without series.
# TYPE empty_total counter
bare 1
`
	for _, tc := range []struct {
		name   string
		served bool
	}{
		{"a_total", true},
		{"lat_seconds", true},
		{"lat_seconds_bucket", true},
		{"lat_seconds_count", true},
		{"a_total_count", false}, // a counter has no _count
		{"g_count", false},       // its HELP names another family
		{"empty_total", false},   // HELP and TYPE, but no series
		{"bare", false},          // a series without HELP or TYPE
		{"missing", false},
	} {
		if got := len(unservedMetrics(text, []string{tc.name})) == 0; got != tc.served {
			t.Errorf("%s: served %v, want %v", tc.name, got, tc.served)
		}
	}
}

// metricName matches the names of pushgate's metrics and of
// client_golang's Go and process collectors.
var metricName = regexp.MustCompile(`\b(?:pushgate|process|go)_[a-z0-9_]*[a-z0-9]`)

// deployMetricNames returns every metric name in files, each with the
// files that name it.
func deployMetricNames(t *testing.T, files []string) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(b), -1) {
			if !slices.Contains(used[name], f) {
				used[name] = append(used[name], f)
			}
		}
	}
	return used
}

// unservedMetrics returns the names a scrape in the text format does not
// serve. A name is served when its family has HELP and TYPE lines and at
// least one series. A name ending in _bucket, _sum or _count is the
// family's own when the family without the suffix is a histogram (or,
// for _sum and _count, a summary); otherwise it is a family's name.
func unservedMetrics(text string, names []string) []string {
	help, kind, series := map[string]bool{}, map[string]string{}, map[string]bool{}
	for line := range strings.Lines(text) {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 3 && fields[0] == "#" && fields[1] == "HELP":
			help[fields[2]] = true
		case len(fields) >= 4 && fields[0] == "#" && fields[1] == "TYPE":
			kind[fields[2]] = fields[3]
		case len(fields) >= 2 && fields[0] != "#":
			name, _, _ := strings.Cut(fields[0], "{")
			series[name] = true
		}
	}
	served := func(family string) bool {
		if !help[family] || kind[family] == "" {
			return false
		}
		switch kind[family] {
		case "histogram":
			return series[family+"_bucket"]
		case "summary":
			return series[family+"_count"]
		}
		return series[family]
	}
	var missing []string
	for _, name := range names {
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(name, suffix)
			if ok && (kind[base] == "histogram" || kind[base] == "summary" && suffix != "_bucket") {
				family = base
			}
		}
		if !served(family) {
			missing = append(missing, name)
		}
	}
	return missing
}

// scrapeFreshClusterNode starts a cluster node on a real redis-server,
// with a simulated upstream, the relay and TLS on, waits until its /readyz
// answers 200, and returns its /metrics.
func scrapeFreshClusterNode(t *testing.T) string {
	t.Helper()
	redis := redistest.Start(t)
	rcv := relaytest.New(t, nil)
	const apiKey = "deploy-files-key"
	sim := simulator.New(simulator.Config{APIKey: apiKey})
	t.Cleanup(sim.Close)
	up := httptest.NewServer(sim)
	t.Cleanup(up.Close)
	pair := tlstest.NewPair(t, 1)
	certFile, keyFile := pair.Write(t, t.TempDir())
	client := h2Client(pair)
	args := relayArgs(rcv, "-tls-cert", certFile, "-tls-key", keyFile, "-upstream", up.URL, "-api-key", apiKey, "-flow-id", "deploy-files-flow", "-flow-origin", up.URL,
		"-secret", "a-cluster-secret-of-32-bytes-len", "-redis-url", redis.URL(), "-webhook-secret", clusterWebhookSecret,
		"-poll-interval", "100ms", "-shutdown-grace", "3s")
	cfg, err := parseConfig(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := gateway.Listen("127.0.0.1:0", "") // no built-in simulator: the upstream is up
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + ls.Gateway.Addr().String()
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)), &ls) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(cfg.gw.ShutdownGrace + time.Second):
			t.Error("no clean exit within the shutdown grace period")
		}
		client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if status(client, base+"/readyz") == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz did not answer 200 within 10s", base)
		}
	}
	return scrape(t, client, base)
}
