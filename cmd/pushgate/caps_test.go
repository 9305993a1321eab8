package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// from returns an HTTP client whose connections come from source (a
// loopback address), closed when the test ends.
func from(t *testing.T, source string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// status GETs url with c and returns the answer's status, 0 on an error.
func status(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// idleConns opens n connections from source to addr, each sending one
// GET /healthz and then idling, as keep-alive clients and load balancers
// leave them; they are closed when the test ends.
func idleConns(t *testing.T, addr, source string, n int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	for i := range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("idle connection %d from %s: %v %v", i, source, resp, err)
		}
		resp.Body.Close()
	}
}

// TestProbesPassTheConnectionCaps: while one address holds its whole
// -max-conns-per-client, a health checker or a scraper from that address
// is still answered; any other request from it gets 429.
func TestProbesPassTheConnectionCaps(t *testing.T) {
	in := start(t, "-max-conns-per-client", "4")
	other := from(t, "127.0.0.2")
	deadline := time.Now().Add(5 * time.Second)
	for status(other, in.base+"/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 200")
		}
		time.Sleep(20 * time.Millisecond)
	}
	idleConns(t, strings.TrimPrefix(in.base, "http://"), "127.0.0.1", 4)
	for _, path := range []string{"/readyz", "/healthz", "/metrics"} {
		if got := status(from(t, "127.0.0.1"), in.base+path); got != 200 {
			t.Errorf("%s from an address at its connection cap: %d, want 200", path, got)
		}
	}
	if got := status(from(t, "127.0.0.1"), in.base+"/onboarding-url"); got != 429 {
		t.Errorf("/onboarding-url from an address at its connection cap: %d, want 429", got)
	}
}

// TestIdleConnectionsCannotFillTheNode: idle keep-alive connections from
// two addresses hold the node's whole connection cap (400 under an
// open-file limit of 700); a new client still starts a session and opens
// its stream, as the idle connections longest idle are closed for it.
func TestIdleConnectionsCannotFillTheNode(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.fileLimit = 700 // the connection cap is 400
	in := startConfig(t, cfg)
	addr := strings.TrimPrefix(in.base, "http://")
	idleConns(t, addr, "127.0.0.1", 200)
	idleConns(t, addr, "127.0.0.2", 200)

	third := from(t, "127.0.0.3")
	resp, err := third.Get(in.base + "/onboarding-url")
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ InterviewID, Token string }
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a new client's session while idle connections hold the node: %s, want 200", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.base+"/events?interviewId="+s.InterviewID, nil)
	req.Header.Set("X-Token", s.Token)
	stream, err := third.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != 200 {
		t.Fatalf("a new client's stream while idle connections hold the node: %s, want 200", stream.Status)
	}
	br := bufio.NewReader(stream.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the new stream ended before its first status: %v", err)
		}
		if strings.HasPrefix(line, "data:") {
			break
		}
	}
	if n := metricValue(scrape(t, third, in.base), "pushgate_connections_closed_idle_total{reason=\"node_limit\"}"); n < 2 {
		t.Errorf("idle connections closed at the cap: %v, want at least 2 (the session's and the stream's)", n)
	}
}

// TestMetricsApart: with -metrics-addr, /metrics is served there (with
// /healthz and /readyz) and no longer on the public address, which keeps
// its probes.
func TestMetricsApart(t *testing.T) {
	env := map[string]string{"PUSHGATE_METRICS_ADDR": "127.0.0.1:9999"}
	if c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard); err != nil || c.metricsAddr != "127.0.0.1:9999" {
		t.Fatalf("PUSHGATE_METRICS_ADDR: %q %v", c.metricsAddr, err)
	}
	in := start(t, "-metrics-addr", "127.0.0.1:0")
	var metrics string
	deadline := time.Now().Add(5 * time.Second)
	for metrics == "" {
		if m := regexp.MustCompile(`metrics_addr=(\S+)`).FindStringSubmatch(in.logs.String()); m != nil {
			metrics = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no metrics address logged:\n%s", in.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := from(t, "127.0.0.1")
	if text := scrape(t, c, metrics); metricValue(text, "pushgate_sse_connections") != 0 || !strings.Contains(text, "process_open_fds") {
		t.Errorf("the metrics address's /metrics lacks the gateway's metrics:\n%.500s", text)
	}
	for url, want := range map[string]int{
		metrics + "/healthz": 200,
		metrics + "/readyz":  200,
		metrics + "/":        404,
		in.base + "/metrics": 404,
		in.base + "/healthz": 200,
		in.base + "/readyz":  200,
	} {
		var got int
		for range 100 { // /readyz may take a probe of the upstream to turn 200
			if got = status(c, url); got == want {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got != want {
			t.Errorf("GET %s: %d, want %d", url, got, want)
		}
	}
}
