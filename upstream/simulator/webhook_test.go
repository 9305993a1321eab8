package simulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// TestWebhooks: each status change is POSTed to the webhook URL with the
// bearer secret and the session's ids; an unchanged status is not
// announced. A failed call is retried on its own: the next change goes
// out first, then the retry, so the older status arrives last.
func TestWebhooks(t *testing.T) {
	type call struct {
		auth string
		body map[string]string
	}
	calls := make(chan call, 16)
	release := make(chan struct{}) // the first call waits for it, then fails
	var n atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		calls <- call{r.Header.Get("Authorization"), body}
		if n.Add(1) == 1 {
			<-release
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, `{"success":true}`)
	}))
	defer receiver.Close()
	sim := New(Config{APIKey: testKey, WebhookURL: receiver.URL, WebhookSecret: "hook-secret", WebhookRetryScale: 0.01})
	defer sim.Close()
	h := newHarnessFor(t, sim)
	a := h.do("POST", "/omni/start", `{"configurationId":"flow-7","externalCustomerId":"cust-1"}`, "api-version", "1.0", "x-api-key", testKey)
	var s started
	if a.code != 200 || json.Unmarshal(a.body, &s) != nil {
		t.Fatalf("start: %d %s", a.code, a.body)
	}

	for _, status := range []string{StatusIDValidationFinished, StatusIDValidationFinished, StatusFaceValidationFinished} {
		if err := sim.SetStatus(s.InterviewID, status); err != nil {
			t.Fatal(err)
		}
	}
	close(release)                                                                                         // every change is queued: the first call fails now
	want := []string{StatusIDValidationFinished, StatusFaceValidationFinished, StatusIDValidationFinished} // the next change, then the retry
	for i, status := range want {
		select {
		case c := <-calls:
			wantBody := map[string]string{"interviewId": s.InterviewID, "onboardingStatus": status, "externalId": "cust-1", "clientId": "sim", "flowId": "flow-7"}
			if c.auth != "Bearer hook-secret" || !reflect.DeepEqual(c.body, wantBody) {
				t.Fatalf("call %d: %+v, want %v with the secret", i, c, wantBody)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d (%s) never came", i, status)
		}
	}
	eventually(t, "the retry is counted", func() bool { return sim.Stats().WebhooksDelivered == 2 })
	st := sim.Stats()
	if st.Webhooks != 2 || st.WebhookRetries != 1 || st.WebhooksFailed != 0 {
		t.Fatalf("stats %+v: want 2 changes announced, 1 retry, none given up", st)
	}
	select {
	case c := <-calls:
		t.Fatalf("unexpected call %+v", c)
	default:
	}
}

// eventually waits, generously, until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebhookSuccess: a call succeeds on 200 with a JSON body, or 204, and
// is not retried; anything else is retried until it succeeds.
func TestWebhookSuccess(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter, r *http.Request) // the first call's answer
		retried bool
	}{
		{"200 JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"success":true}`) }, false},
		{"200 JSON null", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `null`) }, false},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, false},
		{"200 not JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `OK`) }, true},
		{"200 empty", func(w http.ResponseWriter, r *http.Request) {}, true},
		{"201 JSON", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{}`)
		}, true},
		{"202", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }, true},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, true},
		{"401", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }, true},
		{"timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, true},
		{"connection closed", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := make(chan string, 16)
			var n atomic.Int32
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var c webhookCall
				json.NewDecoder(r.Body).Decode(&c)
				calls <- c.OnboardingStatus
				if n.Add(1) == 1 {
					tt.answer(w, r)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer receiver.Close()
			sim := New(Config{APIKey: testKey, WebhookURL: receiver.URL, WebhookRetryScale: 0.001})
			defer sim.Close()
			sim.webhooks.client.Timeout = 100 * time.Millisecond
			s := newHarnessFor(t, sim).start()
			if err := sim.SetStatus(s.InterviewID, StatusOnboardingFinished); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the change is delivered", func() bool { return sim.Stats().WebhooksDelivered == 1 })
			want := Stats{Webhooks: 1, WebhooksDelivered: 1}
			if tt.retried {
				want.WebhookRetries = 1
			}
			st := sim.Stats()
			if st.Webhooks != want.Webhooks || st.WebhookRetries != want.WebhookRetries || st.WebhooksFailed != 0 {
				t.Fatalf("stats %+v, want %d retries", st, want.WebhookRetries)
			}
			if got := len(calls); got != 1+int(want.WebhookRetries) {
				t.Fatalf("the receiver saw %d calls, want %d", got, 1+want.WebhookRetries)
			}
		})
	}
}

// TestWebhookRetrySchedule: a call that always fails is retried 5 times,
// each wait at least the scaled schedule's (30s, then x2.5), then given up.
func TestWebhookRetrySchedule(t *testing.T) {
	const scale = 0.001
	at := make(chan time.Time, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at <- time.Now()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer receiver.Close()
	sim := New(Config{APIKey: testKey, WebhookURL: receiver.URL, WebhookRetryScale: scale})
	defer sim.Close()
	s := newHarnessFor(t, sim).start()
	if err := sim.SetStatus(s.InterviewID, StatusIDValidationFinished); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the change is given up on", func() bool { return sim.Stats().WebhooksFailed == 1 })
	if st := sim.Stats(); st.Webhooks != 1 || st.WebhookRetries != 5 || st.WebhooksDelivered != 0 {
		t.Fatalf("stats %+v, want 1 change, 5 retries, none delivered", st)
	}
	if len(at) != 6 {
		t.Fatalf("%d calls, want the first and 5 retries", len(at))
	}
	prev := <-at
	wait := time.Duration(float64(30*time.Second) * scale)
	for i := 1; i <= 5; i++ {
		next := <-at
		if gap := next.Sub(prev); gap < wait {
			t.Errorf("retry %d came %s after the call before, want at least %s", i, gap, wait)
		}
		prev, wait = next, time.Duration(float64(wait)*2.5)
	}
}

// TestWebhookRetriesStopOnClose: Close ends the retries waiting (goleak
// checks that their goroutines are gone), and nothing is sent after it.
func TestWebhookRetriesStopOnClose(t *testing.T) {
	calls := make(chan string, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- r.URL.Path
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer receiver.Close()
	sim := New(Config{APIKey: testKey, WebhookURL: receiver.URL}) // the real schedule: 30s to the first retry
	s := newHarnessFor(t, sim).start()
	for _, status := range Flow[1:] {
		if err := sim.SetStatus(s.InterviewID, status); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every change's first call", func() bool { return sim.Stats().Webhooks == int64(len(Flow)-1) })
	sim.Close()
	if st := sim.Stats(); st.WebhookRetries != 0 || len(calls) != len(Flow)-1 {
		t.Fatalf("stats %+v, %d calls: want the first calls only, none held back by a failure", st, len(calls))
	}
}

// hookReceiver is the customer's side of the webhook: an OAuth token
// endpoint and the webhook route, recording what arrives.
type hookReceiver struct {
	srv       *httptest.Server
	ttl       int64 // expires_in of the tokens it issues
	issued    chan string
	calls     chan [2]string // authorization, status
	refuseOne chan bool      // answer the next webhook call 401
}

func newHookReceiver(t *testing.T, ttl int64) *hookReceiver {
	h := &hookReceiver{ttl: ttl, issued: make(chan string, 16), calls: make(chan [2]string, 16), refuseOne: make(chan bool, 1)}
	n := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id) // form-encoded first (RFC 6749 section 2.3.1)
		secret, _ = url.QueryUnescape(secret)
		if !ok || id != "client id" || secret != "client+secret" || r.FormValue("grant_type") != "client_credentials" ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("token request: basic %v %q %q, grant %q, type %q", ok, id, secret, r.FormValue("grant_type"), r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n++
		tok := "token-" + string(rune('a'+n-1))
		h.issued <- tok
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": h.ttl})
	})
	mux.HandleFunc("POST /hook/{secret}", func(w http.ResponseWriter, r *http.Request) {
		var c webhookCall
		json.NewDecoder(r.Body).Decode(&c)
		// Decided before the call is recorded: a refusal the test asks for
		// after it saw a call is for the next one, never that one.
		refuse := false
		select {
		case <-h.refuseOne:
			refuse = true
		default:
		}
		h.calls <- [2]string{r.Header.Get("Authorization") + " " + r.PathValue("secret"), c.OnboardingStatus}
		if refuse {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"success":true}`)
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) next(t *testing.T) [2]string {
	t.Helper()
	select {
	case c := <-h.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook call within 5s")
		return [2]string{}
	}
}

// TestWebhooksWithOAuth: as the upstream with OAuth set up, the sender
// fetches a token first (Basic client credentials, form-encoded), reuses
// it until it expires, then fetches a new one; a call refused with 401
// drops the token, and its retry carries a new one.
func TestWebhooksWithOAuth(t *testing.T) {
	recv := newHookReceiver(t, 1)
	sim := New(Config{APIKey: testKey, WebhookURL: recv.srv.URL + "/hook/x", WebhookTokenURL: recv.srv.URL + "/token",
		WebhookClientID: "client id", WebhookClientSecret: "client+secret", WebhookRetryScale: 0.001})
	defer sim.Close()
	h := newHarnessFor(t, sim)
	s := h.start()

	set := func(status string) {
		t.Helper()
		if err := sim.SetStatus(s.InterviewID, status); err != nil {
			t.Fatal(err)
		}
	}
	set(StatusIDValidationFinished)
	set(StatusGovernmentValidationFinished)
	for _, want := range []string{StatusIDValidationFinished, StatusGovernmentValidationFinished} {
		if c := recv.next(t); c != [2]string{"Bearer token-a x", want} {
			t.Fatalf("call %v, want %s with the first token", c, want)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the token expires
	set(StatusFaceValidationFinished)
	if c := recv.next(t); c != [2]string{"Bearer token-b x", StatusFaceValidationFinished} {
		t.Fatalf("call %v, want a new token after expiry", c)
	}
	recv.refuseOne <- true
	set(StatusOnboardingFinished)
	first, retry := recv.next(t), recv.next(t)
	if first != [2]string{"Bearer token-b x", StatusOnboardingFinished} || retry != [2]string{"Bearer token-c x", StatusOnboardingFinished} {
		t.Fatalf("refused call %v and its retry %v, want the retry with a new token", first, retry)
	}
	if n := sim.Stats().WebhookTokens; n != 3 {
		t.Fatalf("%d tokens fetched, want 3", n)
	}
}

// TestWebhooksWithoutAuth: as the upstream without OAuth, the sender sends
// no Authorization header; a secret can only sit in the URL.
func TestWebhooksWithoutAuth(t *testing.T) {
	recv := newHookReceiver(t, 60)
	sim := New(Config{APIKey: testKey, WebhookURL: recv.srv.URL + "/hook/path-secret"})
	defer sim.Close()
	h := newHarnessFor(t, sim)
	s := h.start()
	if err := sim.SetStatus(s.InterviewID, StatusIDValidationFinished); err != nil {
		t.Fatal(err)
	}
	if c := recv.next(t); c != [2]string{" path-secret", StatusIDValidationFinished} {
		t.Fatalf("call %v, want no Authorization header, the secret in the path", c)
	}
}

// TestWebhooksWithCustomHeaders: the static custom headers of the
// upstream's dashboard go out on every call, first calls and retries.
func TestWebhooksWithCustomHeaders(t *testing.T) {
	got := make(chan string, 4)
	var n atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("X-Incode-Hook") + "|" + r.Header.Get("Authorization")
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // retried
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	sim := New(Config{APIKey: testKey, WebhookURL: receiver.URL, WebhookRetryScale: 0.001,
		WebhookHeaders: http.Header{"X-Incode-Hook": {"a-custom-header-value"}}})
	defer sim.Close()
	h := newHarnessFor(t, sim)
	s := h.start()
	if err := sim.SetStatus(s.InterviewID, StatusIDValidationFinished); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		select {
		case c := <-got:
			if c != "a-custom-header-value|" {
				t.Fatalf("call %d carried %q, want the custom header alone", i, c)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d never came", i)
		}
	}
}
