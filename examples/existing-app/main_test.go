package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestWebhook: the backend takes a relayed event only when pushgate's
// signature holds, and records one event per webhook-id, however many
// times it is delivered.
func TestWebhook(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	b := &backend{relayKey: key, log: log.New(io.Discard, "", 0)}
	body := `{"type":"session.ended","interviewId":"i1","reason":"finished","onboardingStatus":"ONBOARDING_FINISHED","verdict":"OK","externalId":"customer-42"}`
	now := time.Now().Unix()
	sign := func(key []byte, id string, ts int64, body string) string {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
		return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	tests := []struct {
		name      string
		id        string
		ts        int64
		signature string
		body      string
		want      int
		events    int // the interview's events after the delivery
	}{
		{"wrong secret", "msg_1", now, sign([]byte("another key, of the same length!"), "msg_1", now, body), body, http.StatusUnauthorized, 0},
		{"changed body", "msg_1", now, sign(key, "msg_1", now, body), strings.Replace(body, "OK", "FAIL", 1), http.StatusUnauthorized, 0},
		{"six minutes old", "msg_1", now - 360, sign(key, "msg_1", now-360, body), body, http.StatusUnauthorized, 0},
		{"no signature", "msg_1", now, "", body, http.StatusUnauthorized, 0},
		{"signed", "msg_1", now, sign(key, "msg_1", now, body), body, http.StatusNoContent, 1},
		{"delivered again", "msg_1", now + 1, sign(key, "msg_1", now+1, body), body, http.StatusNoContent, 1},
		{"during a rotation", "msg_2", now, "v1,b2xk " + sign(key, "msg_2", now, body), body, http.StatusNoContent, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(tt.body))
			r.Header.Set("webhook-id", tt.id)
			r.Header.Set("webhook-timestamp", strconv.FormatInt(tt.ts, 10))
			r.Header.Set("webhook-signature", tt.signature)
			r.Header.Set("Pushgate-Event-Kind", "ended")
			w := httptest.NewRecorder()
			b.routes().ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("answered %d %s, want %d", w.Code, w.Body, tt.want)
			}
			rec, _ := b.store.get("i1")
			if len(rec.Events) != tt.events {
				t.Fatalf("the backend holds %d events, want %d: %+v", len(rec.Events), tt.events, rec.Events)
			}
			if tt.events > 0 {
				e := rec.Events[0]
				if e.ID != "msg_1" || e.Kind != "ended" || e.Type != "session.ended" || e.Reason != "finished" || e.Verdict != "OK" || e.ExternalID != "customer-42" {
					t.Errorf("recorded %+v", e)
				}
			}
		})
	}
}
