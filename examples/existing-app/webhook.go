package main

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// webhook receives pushgate's relay (-relay-url): Incode's webhooks, byte
// for byte (Pushgate-Event-Kind: upstream), and pushgate's session.status
// and session.ended. It verifies the signature first, records the event
// once per webhook-id (delivery is at least once), and answers at once.
func (b *backend) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20)) // the raw body: that is what was signed
	if err != nil {
		b.fail(w, http.StatusBadRequest, fmt.Errorf("webhook: %w", err))
		return
	}
	if err := verify(b.relayKey, r.Header, body, time.Now()); err != nil {
		b.fail(w, http.StatusUnauthorized, fmt.Errorf("webhook: %w", err))
		return
	}
	e := event{ID: r.Header.Get("webhook-id"), Kind: r.Header.Get("Pushgate-Event-Kind")}
	if err := json.Unmarshal(body, &e); err != nil || e.InterviewID == "" {
		b.fail(w, http.StatusBadRequest, fmt.Errorf("webhook %s: want a JSON object with an interviewId", e.ID))
		return
	}
	if b.store.add(e) {
		b.log.Printf("relay: %s %s %s%s", e.Kind, e.InterviewID, e.OnboardingStatus, e.summary())
	}
	w.WriteHeader(http.StatusNoContent)
}

// summary is what a session event adds to its status, for the log.
func (e event) summary() string {
	if e.Type != "session.ended" {
		return ""
	}
	return fmt.Sprintf(" (session.ended: %s, verdict %s)", e.Reason, cmp.Or(e.Verdict, "null"))
}

// tolerance is how far a delivery's timestamp may be from now.
const tolerance = 5 * time.Minute

// verify reports why a delivery is not signed with key, or nil when it is:
// body is the raw body. It is the Go receiver of docs/relay.md, as is.
func verify(key []byte, h http.Header, body []byte, now time.Time) error {
	id := h.Get("webhook-id")
	timestamp := h.Get("webhook-timestamp")
	signatures := h.Get("webhook-signature")
	if id == "" || timestamp == "" || signatures == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	seconds, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not Unix seconds")
	}
	if d := now.Sub(time.Unix(seconds, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp is more than 5 minutes from now")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, signature := range strings.Split(signatures, " ") {
		got, ok := strings.CutPrefix(signature, "v1,")
		if ok && hmac.Equal([]byte(got), want) {
			return nil
		}
	}
	return errors.New("no signature matches")
}
