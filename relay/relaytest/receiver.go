// Package relaytest is the integrator's backend, for tests of the relay:
// an HTTP receiver that verifies every signature on its own and keeps
// every attempt.
package relaytest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Secret is a signing secret for tests: whsec_ and 32 random bytes.
const Secret = "whsec_3mt/9TPvcPBVZmN5Yyr8tB4O4gMMfKjQKVzoYVTiuMU="

// Receiver is the integrator's backend. It verifies every signature on
// its own (HMAC-SHA256 over id.timestamp.body, as the Standard Webhooks
// spec writes it, not through the library pushgate signs with), keeps
// every attempt, and answers as Answer decides (nil: 200).
type Receiver struct {
	URL string

	t      testing.TB
	srv    *httptest.Server
	keys   [][]byte
	answer func(n int, a Attempt) (int, http.Header)

	mu       sync.Mutex // protects attempts, changed
	attempts []Attempt
	changed  chan struct{} // closed, and made anew, at each attempt
}

// Attempt is one call the receiver got.
type Attempt struct {
	ID, Kind  string // webhook-id, Pushgate-Event-Kind
	Timestamp string // webhook-timestamp
	Body      []byte
	Valid     bool // every header there, and a v1 signature that verifies
	Code      int  // what the receiver answered
	At        time.Time
}

// Event is the body of a session event.
type Event struct {
	Type        string  `json:"type"`
	InterviewID string  `json:"interviewId"`
	Status      string  `json:"onboardingStatus"`
	Seq         uint64  `json:"seq"`
	Reason      string  `json:"reason"`
	Verdict     *string `json:"verdict"`
	ExternalID  string  `json:"externalId"`
}

// Event decodes the attempt's body as a session event (an upstream
// webhook decodes into InterviewID and Status too).
func (a Attempt) Event() Event {
	var e Event
	_ = json.Unmarshal(a.Body, &e)
	return e
}

// New starts a receiver that verifies with secrets (none: Secret), and
// answers as answer decides: n counts the attempts before this one. It
// stops when the test ends.
func New(t testing.TB, answer func(n int, a Attempt) (int, http.Header), secrets ...string) *Receiver {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{Secret}
	}
	r := &Receiver{t: t, answer: answer, changed: make(chan struct{})}
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			t.Fatal(err)
		}
		r.keys = append(r.keys, key)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	t.Cleanup(r.srv.Close)
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	a := Attempt{ID: req.Header.Get("webhook-id"), Kind: req.Header.Get("Pushgate-Event-Kind"), Timestamp: req.Header.Get("webhook-timestamp"), Body: body, At: time.Now()}
	a.Valid = r.verify(a, req.Header.Get("webhook-signature")) && req.Header.Get("Content-Type") == "application/json"
	r.mu.Lock()
	n := len(r.attempts)
	a.Code = http.StatusOK
	var hdr http.Header
	if r.answer != nil {
		a.Code, hdr = r.answer(n, a)
	}
	r.attempts = append(r.attempts, a)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(a.Code)
}

// verify checks one of the v1 signatures against one of the keys.
func (r *Receiver) verify(a Attempt, header string) bool {
	if a.ID == "" || a.Timestamp == "" || header == "" {
		return false
	}
	for _, sig := range strings.Split(header, " ") {
		b64, ok := strings.CutPrefix(sig, "v1,")
		if !ok {
			continue
		}
		for _, key := range r.keys {
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(a.ID + "." + a.Timestamp + "."))
			mac.Write(a.Body)
			if hmac.Equal([]byte(b64), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
				return true
			}
		}
	}
	return false
}

// All returns every attempt so far.
func (r *Receiver) All() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.attempts)
}

// Accepted returns the attempts answered 2xx, in order.
func (r *Receiver) Accepted() []Attempt {
	var out []Attempt
	for _, a := range r.All() {
		if a.Code/100 == 2 {
			out = append(out, a)
		}
	}
	return out
}

// WaitAccepted waits until n attempts were accepted, or fails the test
// after within (a guard against hanging, not a measurement).
func (r *Receiver) WaitAccepted(n int, within time.Duration) []Attempt {
	r.t.Helper()
	var got []Attempt
	r.waitFor(within, func() bool { got = r.Accepted(); return len(got) >= n }, func() string {
		return fmt.Sprintf("%d attempts accepted, want %d (all attempts: %d)", len(r.Accepted()), n, len(r.All()))
	})
	return got
}

// Unique returns the accepted attempts, each webhook-id once (its first
// acceptance), and how many accepted attempts repeated an id.
func Unique(accepted []Attempt) (first []Attempt, duplicates int) {
	seen := map[string]bool{}
	for _, a := range accepted {
		if seen[a.ID] {
			duplicates++
			continue
		}
		seen[a.ID] = true
		first = append(first, a)
	}
	return first, duplicates
}

// WaitUnique waits until n distinct events (webhook-ids) were accepted, or
// fails the test after within, and returns them as Unique does.
func (r *Receiver) WaitUnique(n int, within time.Duration) (first []Attempt, duplicates int) {
	r.t.Helper()
	r.waitFor(within, func() bool { first, duplicates = Unique(r.Accepted()); return len(first) >= n }, func() string {
		return fmt.Sprintf("%d distinct events accepted, want %d (all attempts: %d)", len(first), n, len(r.All()))
	})
	return first, duplicates
}

// WaitAttempts waits until n attempts came, whatever their answers, or
// fails the test after within.
func (r *Receiver) WaitAttempts(n int, within time.Duration) []Attempt {
	r.t.Helper()
	var all []Attempt
	r.waitFor(within, func() bool { all = r.All(); return len(all) >= n }, func() string {
		return fmt.Sprintf("%d attempts, want %d", len(r.All()), n)
	})
	return all
}

// waitFor waits until cond holds, checked at each attempt, or fails the
// test after within, with what describe says.
func (r *Receiver) waitFor(within time.Duration, cond func() bool, describe func() string) {
	r.t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		changed := r.changed // taken before cond: no attempt goes unseen
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			r.t.Fatalf("after %v: %s", within, describe())
		}
	}
}
