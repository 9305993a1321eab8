package gateway_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// TestSimulatorWebhookModes: the simulator calls the webhook the way the
// upstream does in each of its setups, and every change arrives.
func TestSimulatorWebhookModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{gateway.WebhookAuthPath, gateway.WebhookAuthBearer, gateway.WebhookAuthOAuth, gateway.WebhookAuthHeader} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			g := serve(t, gateway.Config{Poller: poller.Config{Interval: time.Hour}, Simulator: gateway.SimulatorConfig{Webhooks: true, WebhookAuth: mode}})
			s := start(t, g.base)
			st := open(t, g.base, s)
			st.NextStatus(t)
			for _, status := range simulator.Path(simulator.OrderIncode)[1:] {
				if err := g.Simulator.SetStatus(s.InterviewID, status); err != nil {
					t.Fatal(err)
				}
				if u := st.NextStatus(t); u.Status != status {
					t.Fatalf("got %s, want %s", u.Status, status)
				}
			}
			waitFor(t, "the simulator counts 6 webhooks", func() bool { return g.Simulator.Stats().Webhooks == 6 })
			if n := g.Simulator.Stats().WebhookTokens; (mode == gateway.WebhookAuthOAuth) != (n == 1) {
				t.Fatalf("%d access tokens fetched: want one with OAuth, none otherwise", n)
			}
		})
	}
}

// webhookCall is a call the simulator made to the gateway's webhook
// routes, and the gateway's answer.
type webhookCall struct {
	path, authorization, custom string // custom: the X-Hook header
	code                        int
}

// TestSimulatorWebhookCalls: the simulator is given the webhook URL and
// credentials of the mode configured, or of the credentials configured
// when no mode is, with the secrets the gateway takes (made up when none
// is configured); the gateway answers its calls 200.
func TestSimulatorWebhookCalls(t *testing.T) {
	t.Parallel()
	const (
		secret       = "a-webhook-secret-of-32-bytes-or-more-0123"
		clientSecret = "a-client-secret-of-32-bytes-or-more-01234"
		headerValue  = "a-header-value-of-32-bytes-or-more-012345"
	)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("hooks:"+clientSecret))
	madeUp := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, tc := range []struct {
		name  string
		mode  string
		http  sse.Config
		check func(t *testing.T, calls []webhookCall)
	}{
		{"no mode: the secret in the path", "", sse.Config{WebhookSecret: secret}, func(t *testing.T, calls []webhookCall) {
			want(t, calls, webhookCall{path: "/webhooks/onboarding-status/" + secret, code: 200})
		}},
		{"path: a secret made up", gateway.WebhookAuthPath, sse.Config{}, func(t *testing.T, calls []webhookCall) {
			if len(calls) != 1 || !madeUp.MatchString(strings.TrimPrefix(calls[0].path, "/webhooks/onboarding-status/")) ||
				calls[0].authorization != "" || calls[0].code != 200 {
				t.Fatalf("calls %+v, want one to the webhook with a made-up secret in its path", calls)
			}
		}},
		{"bearer", gateway.WebhookAuthBearer, sse.Config{WebhookSecret: secret}, func(t *testing.T, calls []webhookCall) {
			want(t, calls, webhookCall{path: "/webhooks/onboarding-status", authorization: "Bearer " + secret, code: 200})
		}},
		{"no mode: OAuth with a client", "", sse.Config{WebhookClientID: "hooks", WebhookClientSecret: clientSecret}, func(t *testing.T, calls []webhookCall) {
			if len(calls) != 2 || calls[0] != (webhookCall{path: "/webhooks/token", authorization: basic, code: 200}) ||
				calls[1].path != "/webhooks/onboarding-status" || !strings.HasPrefix(calls[1].authorization, "Bearer ") ||
				strings.Contains(calls[1].authorization, clientSecret) || calls[1].code != 200 {
				t.Fatalf("calls %+v, want the client's token request, then the webhook with the access token", calls)
			}
		}},
		{"no mode: the custom header", "", sse.Config{WebhookHeaderName: "X-Hook", WebhookHeaderValue: headerValue}, func(t *testing.T, calls []webhookCall) {
			want(t, calls, webhookCall{path: "/webhooks/onboarding-status", custom: headerValue, code: 200})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := recordWebhooks(t, gateway.Config{HTTP: tc.http, Poller: poller.Config{Interval: time.Hour},
				Simulator: gateway.SimulatorConfig{Webhooks: true, WebhookAuth: tc.mode}})
			tc.check(t, calls)
		})
	}
}

// want fails unless calls are the one call given.
func want(t *testing.T, calls []webhookCall, call webhookCall) {
	t.Helper()
	if len(calls) != 1 || calls[0] != call {
		t.Fatalf("calls %+v, want %+v alone", calls, call)
	}
}

// recordWebhooks builds a gateway from cfg, serves its Handler behind a
// recorder, has the simulator push one change of a session, and returns
// the calls to the webhook routes, once the change arrived.
func recordWebhooks(t *testing.T, cfg gateway.Config) []webhookCall {
	t.Helper()
	ls := listen(t)
	g := build(t, cfg, ls)
	rec := &webhookRecorder{next: g.Handler}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ls.Gateway)
	t.Cleanup(func() {
		g.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	s := start(t, "http://"+ls.Gateway.Addr().String())
	if err := g.Simulator.SetStatus(s.InterviewID, simulator.Flow[1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a webhook call answered", func() bool {
		calls := rec.calls()
		return len(calls) > 0 && strings.HasPrefix(calls[len(calls)-1].path, "/webhooks/onboarding-status")
	})
	if u, _ := g.Statuses.Last(s.InterviewID); u.Status != simulator.Flow[1] {
		t.Fatalf("status %+v after the webhook, want %s", u, simulator.Flow[1])
	}
	return rec.calls()
}

// webhookRecorder records the calls to the webhook routes.
type webhookRecorder struct {
	next http.Handler
	mu   sync.Mutex // protects seen
	seen []webhookCall
}

func (r *webhookRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !strings.HasPrefix(req.URL.Path, "/webhooks/") {
		r.next.ServeHTTP(w, req)
		return
	}
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	r.next.ServeHTTP(sw, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, webhookCall{path: req.URL.Path, authorization: req.Header.Get("Authorization"), custom: req.Header.Get("X-Hook"), code: sw.code})
}

func (r *webhookRecorder) calls() []webhookCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhookCall(nil), r.seen...)
}

// statusWriter keeps the status code of an answer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}
