package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/relay/relaytest"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// relayArgs are the flags that relay to rcv, retrying within a second.
func relayArgs(rcv *relaytest.Receiver, more ...string) []string {
	return append([]string{"-relay-url", rcv.URL + "/hook", "-relay-secret", relaytest.Secret, "-relay-backoff-max", "1s"}, more...)
}

// TestRelayRidesOutADownBackend: the backend answers 503 for 20 s (6 s in
// the quick suite) while ten sessions run their whole flow (the built-in simulator's webhooks);
// once it is up, every event arrives, signed, in the order it was made
// per interview: each upstream webhook, then its session.status, then one
// session.ended with the verdict. An event that arrives twice does so
// under the id it had.
func TestRelayRidesOutADownBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("a backend down for seconds: not with -short")
	}
	t.Parallel()
	outage := testenv.Size(6*time.Second, 20*time.Second)
	var down atomic.Bool
	down.Store(true)
	rcv := relaytest.New(t, func(int, relaytest.Attempt) (int, http.Header) {
		if down.Load() {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	})
	wentDown := time.Now()
	in := start(t, relayArgs(rcv, "-sessions-per-minute", "-1")...)
	const sessions = 10
	ids := make([]string, sessions)
	for i := range ids {
		var s session
		getJSON(t, in.base+"/onboarding-url", &s)
		ids[i] = s.InterviewID
	}
	flow := simulator.Flow[1:] // the webhooks: every status after UNKNOWN
	for _, status := range flow {
		for _, id := range ids {
			post(t, in.sim+"/sim/interviews/"+id+"/status", `{"onboardingStatus":"`+status+`"}`)
		}
	}
	time.Sleep(time.Until(wentDown.Add(outage)))
	tried := len(rcv.All())
	down.Store(false)

	got, dups := rcv.WaitUnique(sessions*(2*len(flow)+1), 30*time.Second)
	byInterview := map[string][]string{}
	for _, a := range got {
		e := a.Event()
		if !a.Valid || e.InterviewID == "" {
			t.Fatalf("%s %s: valid %v, body %s", a.Kind, a.ID, a.Valid, a.Body)
		}
		what := a.Kind + ":" + e.Status
		if e.Type == "session.ended" {
			what = fmt.Sprint("ended:", e.Reason, ":", e.Verdict)
			if e.Verdict != nil {
				what = fmt.Sprint("ended:", e.Reason, ":", *e.Verdict)
			}
		}
		byInterview[e.InterviewID] = append(byInterview[e.InterviewID], what)
	}
	var want []string
	for _, status := range flow {
		want = append(want, "upstream:"+status, "status:"+status)
	}
	want = append(want, "ended:finished:OK")
	for _, id := range ids {
		if !slices.Equal(byInterview[id], want) {
			t.Fatalf("%s got\n%v\nwant\n%v", id, byInterview[id], want)
		}
	}
	t.Logf("%d events, %d attempts while the backend was down, %d delivered twice (same id)", len(got), tried, dups)
}

// TestRelayEndsEverySession: 1,000 sessions finish; a backend that wants
// only the ends (-relay-events ended) gets exactly 1,000 session.ended,
// one per session, each with its verdict.
func TestRelayEndsEverySession(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sessions: not with -short")
	}
	t.Parallel() // a gateway of its own; no time bound
	rcv := relaytest.New(t, nil)
	in := start(t, relayArgs(rcv, "-relay-events", "ended", "-sessions-per-minute", "-1", "-max-sessions-per-minute", "-1")...)
	const sessions = 1000
	ids := make(map[string]bool, sessions)
	for range sessions {
		var s session
		getJSON(t, in.base+"/onboarding-url", &s)
		ids[s.InterviewID] = true
		post(t, in.sim+"/sim/interviews/"+s.InterviewID+"/status", `{"onboardingStatus":"ONBOARDING_FINISHED"}`)
	}
	rcv.WaitAccepted(sessions, time.Minute)
	time.Sleep(500 * time.Millisecond) // anything more would come within it
	ended := map[string]bool{}
	for _, a := range rcv.All() {
		e := a.Event()
		if a.Code != 200 || !a.Valid || e.Type != "session.ended" || e.Reason != "finished" || e.Verdict == nil || *e.Verdict != "OK" || !ids[e.InterviewID] || ended[e.InterviewID] {
			t.Fatalf("event %s: %s (valid %v), want one session.ended per session, with its verdict", a.ID, a.Body, a.Valid)
		}
		ended[e.InterviewID] = true
	}
	if len(ended) != sessions {
		t.Fatalf("%d sessions ended at the backend, want %d", len(ended), sessions)
	}
}

// TestRelayDirSurvivesAKill: a single node with -relay-dir takes webhooks
// while its backend is down, is killed with SIGKILL, and restarted: every
// webhook it had answered 200 reaches the backend, byte for byte.
func TestRelayDirSurvivesAKill(t *testing.T) {
	if testing.Short() {
		t.Skip("a process killed and restarted: not with -short")
	}
	var down atomic.Bool
	down.Store(true)
	rcv := relaytest.New(t, func(int, relaytest.Attempt) (int, http.Header) {
		if down.Load() {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusNoContent, nil
	})
	bin := filepath.Join(buildCommands(t), "pushgate")
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	args := relayArgs(rcv, "-addr", addr, "-sim-addr", testenv.FreeAddr(t), "-relay-dir", t.TempDir(), "-webhook-secret", clusterWebhookSecret, "-log-level", "warn")
	p := startProcess(t, bin, base+"/healthz", args...)
	var accepted []string
	for i := range 50 {
		body := fmt.Sprintf(`{"interviewId":"iv%d","onboardingStatus":"FACE_VALIDATION_FINISHED","externalId":%d}`, i%7, i)
		code, _ := postJSON(t, base+"/webhooks/onboarding-status", body, "Authorization", "Bearer "+clusterWebhookSecret)
		if code == http.StatusOK {
			accepted = append(accepted, body)
		}
	}
	rcv.WaitAttempts(1, 10*time.Second) // the backend has been tried: deliveries are under way
	p.kill()
	down.Store(false)
	startProcess(t, bin, base+"/healthz", args...)
	got, dups := rcv.WaitUnique(len(accepted), 30*time.Second)
	var bodies []string
	for _, a := range got {
		if !a.Valid || a.Kind != "upstream" {
			t.Fatalf("%s: %s, valid %v", a.ID, a.Kind, a.Valid)
		}
		bodies = append(bodies, string(a.Body))
	}
	slices.Sort(bodies)
	slices.Sort(accepted)
	if !slices.Equal(bodies, accepted) {
		t.Fatalf("delivered %d webhooks, want the %d accepted before the kill", len(bodies), len(accepted))
	}
	t.Logf("%d webhooks accepted before SIGKILL, all delivered after the restart (%d twice, same id)", len(accepted), dups)
}

// TestClusterRelayOutlivesANode: three nodes on Redis relay 300 webhooks
// (to node 0, as a load balancer might) to a slow backend; node 0 is
// killed with SIGKILL while deliveries are under way. Every webhook
// reaches the backend, through the other nodes; the duplicates (a
// delivery node 0 made whose answer it never recorded) are counted.
func TestClusterRelayOutlivesANode(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: not with -short")
	}
	t.Parallel() // counts only
	rcv := relaytest.New(t, func(int, relaytest.Attempt) (int, http.Header) {
		time.Sleep(5 * time.Millisecond) // a slow backend: deliveries stay in flight
		return http.StatusOK, nil
	})
	c := newCluster(t, 3, relayArgs(rcv, "-relay-timeout", "1s", "-webhook-secret", clusterWebhookSecret)...)
	const webhooks = 300
	var want []string
	for i := range webhooks {
		body := fmt.Sprintf(`{"interviewId":"iv%d","onboardingStatus":"ID_VALIDATION_FINISHED","n":%d}`, i%30, i)
		code, resp := postJSON(t, c.nodes[0].base+"/webhooks/onboarding-status", body, "Authorization", "Bearer "+clusterWebhookSecret)
		if code != http.StatusOK {
			t.Fatalf("webhook %d: %d %s", i, code, resp)
		}
		want = append(want, body)
		if i == webhooks/3 {
			c.nodes[0].kill() // the rest go to a node that is gone: sent to node 1 instead
			c.nodes[0].base = c.nodes[1].base
		}
	}
	got, dups := rcv.WaitUnique(webhooks, time.Minute)
	var bodies []string
	order := map[string][]string{}
	for _, a := range got {
		if !a.Valid {
			t.Fatalf("%s: a signature that does not verify", a.ID)
		}
		bodies = append(bodies, string(a.Body))
		iv := a.Event().InterviewID
		order[iv] = append(order[iv], string(a.Body))
	}
	slices.Sort(bodies)
	slices.Sort(want)
	if !slices.Equal(bodies, want) {
		t.Fatalf("%d distinct webhooks delivered, want %d", len(bodies), len(want))
	}
	for iv, bs := range order {
		if !slices.IsSortedFunc(bs, func(a, b string) int { return strings.Compare(nOf(a), nOf(b)) }) {
			t.Fatalf("%s: delivered out of order: %v", iv, bs)
		}
	}
	t.Logf("3 nodes, node 0 killed after %d webhooks: %d of %d delivered, %d delivered twice (same id)", webhooks/3+1, len(got), webhooks, dups)
}

// nOf is the webhook's n, zero-padded so that strings sort as numbers.
func nOf(body string) string {
	_, n, _ := strings.Cut(body, `"n":`)
	return fmt.Sprintf("%08s", strings.TrimSuffix(n, "}"))
}
