package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingNode is one "node" of a cluster: a reverse proxy in front of one
// real pushgate that records which sessions were created through it and
// which streams it carried. What it counts is what the gateway answered,
// independent of what the tool reports.
type countingNode struct {
	mu       sync.Mutex
	sessions []string       // interview ids created here by /onboarding-url
	streams  map[string]int // interview id -> /events streams answered 200 here
	srv      *httptest.Server
}

func newCountingNode(t *testing.T, gateway string) *countingNode {
	t.Helper()
	target, err := url.Parse(gateway)
	if err != nil {
		t.Fatal(err)
	}
	n := &countingNode{streams: map[string]int{}}
	tr := &http.Transport{}
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: tr,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode != http.StatusOK {
				return nil
			}
			switch resp.Request.URL.Path {
			case "/onboarding-url":
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				resp.Body = io.NopCloser(bytes.NewReader(body))
				var s session
				if err := json.Unmarshal(body, &s); err != nil {
					return err
				}
				n.mu.Lock()
				n.sessions = append(n.sessions, s.ID)
				n.mu.Unlock()
			case "/events":
				n.mu.Lock()
				n.streams[resp.Request.URL.Query().Get("interviewId")]++
				n.mu.Unlock()
			}
			return nil
		},
	}
	n.srv = httptest.NewServer(proxy)
	t.Cleanup(func() { n.srv.Close(); tr.CloseIdleConnections() })
	return n
}

// TestGatewaysSpreadOverNodes runs the tool with three -gateway URLs, each a
// counting proxy in front of one real pushgate. Sessions must be created
// round-robin over the nodes, and every interview's subscribers must be
// split over all three: subscriber k of interview i on node (i+k) mod 3.
// Every stream must still get every change, and the report's per-node
// lines must say what the nodes saw. Two worker processes carry the
// connections, so the node list also survives the trip to a -worker child.
func TestGatewaysSpreadOverNodes(t *testing.T) {
	srv, err := spawnServer(t.Context(), spawnOptions{bin: pushgateBin(t), tmpDir: t.TempDir(), interval: 200 * time.Millisecond, perInterview: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	nodes := []*countingNode{newCountingNode(t, srv.Gateway), newCountingNode(t, srv.Gateway), newCountingNode(t, srv.Gateway)}
	list := nodes[0].srv.URL + ", " + nodes[1].srv.URL + "/," + nodes[2].srv.URL // spaces and a trailing slash are fine

	const interviews, subs = 7, 4
	s := runTool(t, "-gateway", list, "-sim", srv.Sim, "-procs", "2",
		"-interviews", "7", "-subscribers-per-interview", "4", "-interval", "200ms", "-duration", "2s")

	// The load itself went through: every stream open, every change once.
	if s.Connections != interviews*subs || s.Errors != 0 || s.EventsMissed != 0 || s.Duplicates != 0 || s.OutOfOrder != 0 ||
		s.EventsDelivered != interviews*subs*len(walk) {
		t.Errorf("connections %d, errors %d %v, delivered %d, missed %d, duplicates %d, out of order %d; want %d streams, every change once",
			s.Connections, s.Errors, s.ErrorsByKind, s.EventsDelivered, s.EventsMissed, s.Duplicates, s.OutOfOrder, interviews*subs)
	}

	// What the nodes saw: session i at node i mod 3 (sessions are made
	// concurrently, so only the counts are in order), and subscriber k of
	// an interview created at node c on node (c+k) mod 3.
	created := map[string]int{} // interview id -> node that created it
	for ni, n := range nodes {
		if want := (interviews + len(nodes) - 1 - ni) / len(nodes); len(n.sessions) != want {
			t.Errorf("node %d created %d sessions, want %d (session i at node i mod 3)", ni, len(n.sessions), want)
		}
		for _, id := range n.sessions {
			created[id] = ni
		}
	}
	if len(created) != interviews {
		t.Fatalf("%d distinct interviews created over the nodes, want %d", len(created), interviews)
	}
	for id, c := range created {
		var got, want []int
		for ni, n := range nodes {
			got = append(got, n.streams[id])
			want = append(want, 0)
			for k := range subs {
				if (c+k)%len(nodes) == ni {
					want[ni]++
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("interview %s (created at node %d): streams per node %v, want %v", id, c, got, want)
		}
	}

	// The report's per-node lines agree with the nodes.
	if len(s.Nodes) != len(nodes) {
		t.Fatalf("the report has %d node entries, want %d", len(s.Nodes), len(nodes))
	}
	for ni, n := range nodes {
		opened := 0
		for _, c := range n.streams {
			opened += c
		}
		r := s.Nodes[ni]
		if r.Gateway != n.srv.URL || r.Sessions != len(n.sessions) || r.Connections != opened || r.Target != opened {
			t.Errorf("report for node %d: %s, %d sessions, %d of %d streams; the node saw %s, %d sessions, %d streams",
				ni, r.Gateway, r.Sessions, r.Connections, r.Target, n.srv.URL, len(n.sessions), opened)
		}
		if r.EventsDelivered != opened*len(walk) || r.EventsMissed != 0 || r.Duplicates != 0 || r.Errors != 0 || r.Latency.N != opened*(len(walk)-1) {
			t.Errorf("report for node %d: %d of %d events, missed %d, duplicates %d, errors %d, %d latency samples; want all %d once",
				ni, r.EventsDelivered, r.EventsExpected, r.EventsMissed, r.Duplicates, r.Errors, r.Latency.N, opened*len(walk))
		}
		if r.RSS <= 0 {
			t.Errorf("report for node %d: RSS %d; want it read from the node's /metrics", ni, r.RSS)
		}
	}
}

// TestGatewayList checks how -gateway is read: one URL as before, a list
// with spaces and trailing slashes, and the mistakes said plainly.
func TestGatewayList(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"http://127.0.0.1:8080"}},
		{[]string{"-gateway", "http://10.0.0.1:8080/"}, []string{"http://10.0.0.1:8080"}},
		{[]string{"-gateway", "http://a:1, http://b:2/ ,http://c:3"}, []string{"http://a:1", "http://b:2", "http://c:3"}},
		{[]string{"-spawn", "-gateway", "not a url,,"}, nil}, // ignored with -spawn, as before
	} {
		c, err := parseFlags(tt.args, &bytes.Buffer{})
		if err != nil || !slices.Equal(c.gateways, tt.want) {
			t.Errorf("%q: gateways %q, %v; want %q", tt.args, c.gateways, err, tt.want)
		}
	}
	for _, bad := range []string{"http://a:1,,http://b:2", "http://a:1,", "127.0.0.1:8080", "https://a:1", "http://"} {
		if _, err := parseFlags([]string{"-gateway", bad}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-gateway") {
			t.Errorf("-gateway %q: %v; want an error that names -gateway", bad, err)
		}
	}
}
