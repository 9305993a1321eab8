package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/cmd/pushgate/gateway/tlstest"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/sse/ssetest"
)

// startTLS runs pushgate with the simulator on HTTPS with pair's files
// (which stay in dir), and returns it with a client that trusts pair and
// speaks HTTP/2.
func startTLS(t *testing.T, dir string, pair tlstest.Pair, args ...string) (*instance, *http.Client) {
	t.Helper()
	certFile, keyFile := pair.Write(t, dir)
	cfg, err := parseConfig(append([]string{"-tls-cert", certFile, "-tls-key", keyFile, "-sessions-per-minute", "-1", "-session-burst", "100"}, args...),
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.gw.TLS.ReloadEvery = 20 * time.Millisecond
	return startConfig(t, cfg), h2Client(pair)
}

// h2Client trusts the pairs given, and speaks HTTP/2.
func h2Client(pairs ...tlstest.Pair) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tlstest.Pool(pairs...)}, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr}
}

// session starts a session on the page's route, through client.
func startSession(t *testing.T, client *http.Client, base string) (id, token string) {
	t.Helper()
	resp, err := client.Get(base + "/onboarding-url")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ InterviewID, Token string }
	if err := jsonBody(resp, &s); err != nil {
		t.Fatal(err)
	}
	return s.InterviewID, s.Token
}

// TestStreamsOverHTTP2: with -tls-cert and -tls-key the gateway serves
// HTTPS and HTTP/2, and 100 streams of 20 interviews share one connection:
// each gets its interview's statuses in order, through the end of the
// flow, which the simulator's webhooks announce over HTTPS.
func TestStreamsOverHTTP2(t *testing.T) {
	t.Parallel() // a gateway of its own; no time bound
	pair := tlstest.NewPair(t, 1)
	in, client := startTLS(t, t.TempDir(), pair, "-poll-interval", "10m", "-push-interval", "10m") // changes by webhook alone
	const interviews, tabs = 20, 5

	var mu sync.Mutex
	conns := map[net.Conn]bool{} // the connections the streams went over
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		mu.Lock()
		conns[i.Conn] = true
		mu.Unlock()
	}}
	type tab struct {
		id string
		s  *ssetest.Stream
	}
	var all []tab
	for range interviews {
		id, token := startSession(t, client, in.base)
		for range tabs {
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, in.base+"/events?interviewId="+id, nil)
			req.Header.Set("X-Token", token)
			s := ssetest.Open(t, client, req)
			if s.Resp.StatusCode != http.StatusOK || s.Resp.ProtoMajor != 2 {
				t.Fatalf("stream: %s over %s, want 200 over HTTP/2", s.Resp.Status, s.Resp.Proto)
			}
			if cc := s.Resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-transform") {
				t.Errorf("Cache-Control %q, want no-transform", cc)
			}
			if u := s.NextStatus(t); u.Status != flow.StatusUnknown {
				t.Fatalf("first status %q, want UNKNOWN", u.Status)
			}
			all = append(all, tab{id, s})
		}
	}
	if len(conns) != 1 {
		t.Errorf("%d streams went over %d connections, want 1", len(all), len(conns))
	}
	for i := 0; i < len(all); i += tabs {
		post(t, in.sim+"/sim/interviews/"+all[i].id+"/status", `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`)
		post(t, in.sim+"/sim/interviews/"+all[i].id+"/status", `{"onboardingStatus":"ONBOARDING_FINISHED"}`)
	}
	for _, tb := range all {
		var got []string
		for _, ev := range tb.s.Ended(t) {
			u, err := ssetest.Status(ev)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, u.Status)
		}
		if strings.Join(got, " ") != "ID_VALIDATION_FINISHED ONBOARDING_FINISHED" {
			t.Errorf("%s: events %q after UNKNOWN, want ID_VALIDATION_FINISHED then ONBOARDING_FINISHED, then the end", tb.id, got)
		}
	}
	if code := healthcheck(in.base + "/healthz"); code != 0 {
		t.Errorf("pushgate -healthcheck %s/healthz: exit %d, want 0 (the container probe over HTTPS)", in.base, code)
	}
	text := scrape(t, client, in.base)
	if n := metricValue(text, `pushgate_webhooks_total{result="applied"}`); n != 2*interviews {
		t.Errorf("webhooks applied: %v, want %d (the simulator's, over HTTPS)", n, 2*interviews)
	}
	if n := metricValue(text, `pushgate_upstream_calls_total{endpoint="status",outcome="ok"}`); n > interviews+2 {
		t.Errorf("upstream status calls: %v for %d interviews; the webhooks should have carried the changes", n, interviews)
	}
}

// TestTLSMinVersion: TLS 1.2 is the default floor, and -tls-min-version
// 1.3 refuses a TLS 1.2 client.
func TestTLSMinVersion(t *testing.T) {
	t.Parallel() // handshakes
	pair := tlstest.NewPair(t, 1)
	for _, tc := range []struct {
		args     []string
		max      uint16 // the client's highest version
		accepted bool
	}{
		{nil, tls.VersionTLS11, false},
		{nil, tls.VersionTLS12, true},
		{[]string{"-tls-min-version", "1.3"}, tls.VersionTLS12, false},
		{[]string{"-tls-min-version", "1.3"}, tls.VersionTLS13, true},
	} {
		in, _ := startTLS(t, t.TempDir(), pair, tc.args...)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tlstest.Pool(pair), MinVersion: tls.VersionTLS10, MaxVersion: tc.max}}}
		resp, err := client.Get(in.base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		if refused := err != nil && strings.Contains(err.Error(), "protocol version"); refused == tc.accepted || (err != nil && !refused) {
			t.Errorf("%q, a client of TLS 1.%d at most: %v, want accepted %v", tc.args, tc.max-tls.VersionTLS10, err, tc.accepted)
		}
		client.CloseIdleConnections()
		if !tc.accepted {
			// A refused handshake is counted, and logged at debug only:
			// load balancers' TCP checks and scanners make many.
			waitFor(t, "the refused handshake counted", func() bool {
				return metricValue(scrape(t, h2Client(pair), in.base), "pushgate_tls_handshake_errors_total") == 1
			})
			if logs := in.logs.String(); !strings.Contains(logs, "level=DEBUG msg=\"http: TLS handshake error") || strings.Contains(logs, "level=WARN msg=\"http: TLS handshake error") {
				t.Errorf("the refused handshake is not logged at debug alone:\n%s", logs)
			}
		}
		in.stop()
	}
}

// TestCertificateReload: a renewed pair is served from the next
// handshake on, while open streams go on; a broken pair is logged and the
// one in use kept.
func TestCertificateReload(t *testing.T) {
	t.Parallel() // a gateway of its own; no time bound
	dir := t.TempDir()
	first, second := tlstest.NewPair(t, 1), tlstest.NewPair(t, 2)
	in, client := startTLS(t, dir, first)
	id, token := startSession(t, client, in.base)
	req, _ := http.NewRequest(http.MethodGet, in.base+"/events?interviewId="+id, nil)
	req.Header.Set("X-Token", token)
	stream := ssetest.Open(t, client, req)
	if u := stream.NextStatus(t); u.Status != flow.StatusUnknown {
		t.Fatalf("first status %q", u.Status)
	}
	served := func() (int64, error) { // the serial a new connection sees
		c := h2Client(first, second)
		defer c.CloseIdleConnections()
		resp, err := c.Get(in.base + "/healthz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
	}

	// A key that does not parse: the first pair stays.
	tlstest.WriteFile(t, dir+"/key.pem", []byte("-----BEGIN EC PRIVATE KEY-----\nbroken\n-----END EC PRIVATE KEY-----\n"))
	waitFor(t, "the broken pair logged", func() bool {
		return strings.Contains(in.logs.String(), "TLS certificate changed but does not load; keeping the one in use")
	})
	if serial, err := served(); err != nil || serial != 1 {
		t.Fatalf("after a broken pair: serial %d, %v; want the first certificate still", serial, err)
	}

	// The renewed pair, with the first's size and modification time (a
	// copy that keeps them): new connections get it.
	old, err := os.Stat(dir + "/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := second.Write(t, dir)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, old.ModTime(), old.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the second certificate served", func() bool {
		serial, err := served()
		return err == nil && serial == 2
	})
	post(t, in.sim+"/sim/interviews/"+id+"/status", `{"onboardingStatus":"ONBOARDING_FINISHED"}`)
	if u := stream.NextStatus(t); u.Status != flow.StatusFinished {
		t.Fatalf("the stream opened before the reload got %q, want ONBOARDING_FINISHED", u.Status)
	}
	text := scrape(t, h2Client(first, second), in.base)
	if ok, failed := metricValue(text, `pushgate_tls_reloads_total{result="ok"}`), metricValue(text, `pushgate_tls_reloads_total{result="failed"}`); ok != 1 || failed < 1 {
		t.Errorf("reloads ok %v, failed %v; want 1 and at least 1", ok, failed)
	}
	if exp := metricValue(text, "pushgate_tls_certificate_expiry_timestamp_seconds"); exp != float64(second.Cert.NotAfter.Unix()) {
		t.Errorf("certificate expiry %v, want the second's %d", exp, second.Cert.NotAfter.Unix())
	}
}

// TestMismatchedPairRefused: a certificate with another pair's key stops
// the start, with the files named.
func TestMismatchedPairRefused(t *testing.T) {
	dir := t.TempDir()
	first, second := tlstest.NewPair(t, 1), tlstest.NewPair(t, 2)
	certFile, keyFile := first.Write(t, dir)
	tlstest.WriteFile(t, keyFile, second.KeyPEM)
	cfg, err := parseConfig([]string{"-tls-cert", certFile, "-tls-key", keyFile}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := gateway.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Gateway.Close()
	defer ls.Simulator.Close()
	err = run(context.Background(), cfg, slog.New(slog.DiscardHandler), &ls)
	if err == nil || !strings.Contains(err.Error(), "private key does not match public key") || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("run: %v, want the mismatch named with the files", err)
	}
}

// waitFor polls cond until it holds, failing after 10s (a guard against
// hanging, not a measurement).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonBody(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s", resp.Request.URL.Path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestConnectionCapsOverTLS: the connection caps see through TLS: over
// -max-conns-per-client a connection's request is answered 429 with a
// JSON error, and its probes are still served.
func TestConnectionCapsOverTLS(t *testing.T) {
	pair := tlstest.NewPair(t, 1)
	in, client := startTLS(t, t.TempDir(), pair, "-max-conns-per-client", "3")
	id, token := startSession(t, client, in.base) // one connection, kept alive
	for range 2 {                                 // two more, each holding a stream
		c := h2Client(pair)
		req, _ := http.NewRequest(http.MethodGet, in.base+"/events?interviewId="+id, nil)
		req.Header.Set("X-Token", token)
		if s := ssetest.Open(t, c, req); s.Resp.StatusCode != http.StatusOK {
			t.Fatalf("stream within the cap: %s", s.Resp.Status)
		}
	}
	third := h2Client(pair)
	resp, err := third.Get(in.base + "/onboarding-url")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("over the cap: %s %s, want 429 with a JSON error", resp.Status, body)
	}
	probe, err := h2Client(pair).Get(in.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	probe.Body.Close()
	if probe.StatusCode != http.StatusOK {
		t.Fatalf("probe over the cap: %s, want 200", probe.Status)
	}
}

// TestOverCapHTTP2ServesOneProbe: a connection over a cap is served one
// probe, then closed; over HTTP/2 it may send many requests at once, and
// the others are refused, so a client over its cap cannot multiply its
// scrapes of /metrics or probes.
func TestOverCapHTTP2ServesOneProbe(t *testing.T) {
	pair := tlstest.NewPair(t, 1)
	in, client := startTLS(t, t.TempDir(), pair, "-max-conns-per-client", "1")
	startSession(t, client, in.base) // the one connection within the cap, kept alive
	tc, err := tls.Dial("tcp", strings.TrimPrefix(in.base, "https://"), &tls.Config{RootCAs: tlstest.Pool(pair), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := (&http2.Transport{}).NewClientConn(tc)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	const probes = 4
	codes := make(chan int, probes)
	var wg sync.WaitGroup
	for range probes {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, in.base+"/healthz", nil)
			resp, err := cc.RoundTrip(req)
			if err != nil {
				codes <- 0 // sent after the GOAWAY: not served either
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusOK] != 1 || count[http.StatusOK]+count[http.StatusTooManyRequests]+count[0] != probes {
		t.Fatalf("%d probes on one connection over the cap: answers %v, want one 200 and the rest refused (429) or unsent", probes, count)
	}
}
