package simulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestWebhooks: each status change is POSTed to the webhook URL, in order,
// with the bearer secret; a failed call is retried once.
func TestWebhooks(t *testing.T) {
	type call struct {
		auth string
		body map[string]string
	}
	calls := make(chan call, 16)
	fail := make(chan bool, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		calls <- call{r.Header.Get("Authorization"), body}
		select {
		case <-fail:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			io.WriteString(w, `{"success":true}`)
		}
	}))
	defer receiver.Close()
	sim := New(Config{APIKey: testKey, WebhookURL: receiver.URL, WebhookSecret: "hook-secret"})
	defer sim.Close()
	h := newHarnessFor(t, sim)
	s := h.start()
	sim.webhooks.retryAfter = 10 * time.Millisecond

	fail <- true // the first call fails, its retry succeeds
	for _, status := range []string{"ID_VALIDATION_FINISHED", "ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED"} {
		if err := sim.SetStatus(s.InterviewID, status); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"ID_VALIDATION_FINISHED", "ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED"} // retry, then the next change
	for i, status := range want {
		select {
		case c := <-calls:
			if c.auth != "Bearer hook-secret" || c.body["interviewId"] != s.InterviewID || c.body["onboardingStatus"] != status {
				t.Fatalf("call %d: %+v, want %s with the secret", i, c, status)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d (%s) never came", i, status)
		}
	}
	select {
	case c := <-calls:
		t.Fatalf("unexpected call %+v: an unchanged status is not announced", c)
	case <-time.After(100 * time.Millisecond):
	}
	if n := sim.Stats().Webhooks; n != 2 {
		t.Fatalf("stats count %d webhooks, want 2 changes", n)
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
// drops the token, and its one retry carries a new one.
func TestWebhooksWithOAuth(t *testing.T) {
	recv := newHookReceiver(t, 1)
	sim := New(Config{APIKey: testKey, WebhookURL: recv.srv.URL + "/hook/x", WebhookTokenURL: recv.srv.URL + "/token",
		WebhookClientID: "client id", WebhookClientSecret: "client+secret"})
	defer sim.Close()
	sim.webhooks.retryAfter = 10 * time.Millisecond
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
