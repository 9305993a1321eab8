package sse

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/sse/ssetest"
)

// FuzzEventFrame renders a status event and reads it back the way a
// browser's EventSource does: whatever the upstream's strings hold, the
// frame is one "status" event that carries exactly the update.
func FuzzEventFrame(f *testing.F) {
	for _, s := range []struct {
		id, status string
		seq        uint64
	}{
		{"64f1c0ffee0123456789abcd", "ONBOARDING_FINISHED", 1},
		{"64f1c0ffee0123456789abcd", "UNKNOWN", 1_767_225_600_000},
		{"", "", 0},
		{"a", "MANUAL_REVIEW_APPROVED", math.MaxUint64},
		{"x", "OK\n\nevent: status\ndata: {\"onboardingStatus\":\"FAKE\"}\n\n", 2},
		{"x", "OK\r\rid: 9\r", 3},
		{"x\r\n", ":comment\r\nretry: 1", 4},
		{"\u2028\u2029\u0085", "\x00\x01\x1f\x7f", 5},
		{"\xff\xfe\xc0\xaf", "O\xedK\xa0\x80", 6},
		{"\ufeff", "\ufeffONBOARDING_FINISHED", 7},
		{"<script>", "</script>&amp;", 8},
		{"data", "data:", 9},
	} {
		f.Add(s.id, s.status, s.seq)
	}
	const retryHint = 2 * time.Second
	retry := strconv.FormatInt(retryHint.Milliseconds(), 10)
	f.Fuzz(func(t *testing.T, interviewID, status string, seq uint64) {
		// Escaping works a character at a time; longer strings find
		// nothing more, and make every new input take seconds to minimize.
		interviewID, status = interviewID[:min(len(interviewID), 64)], status[:min(len(status), 64)]
		u := flow.Update{InterviewID: interviewID, Status: status, Seq: seq}
		frame := updateFrame(u, retryHint)
		if !utf8.Valid(frame) {
			t.Fatalf("frame(%+v) = %q: not UTF-8, which EventSource decodes with replacements", u, frame)
		}
		var evs []ssetest.Event
		var fields []string
		p := ssetest.Parser{Field: func(name string) { fields = append(fields, name) }}
		p.Feed(frame, func(ev ssetest.Event) { evs = append(evs, ev) })
		for _, name := range fields {
			switch name {
			case "id", "data", "event", "retry":
			default:
				t.Fatalf("frame(%+v) = %q: unexpected field or comment %q", u, frame, name)
			}
		}
		if len(fields) != 4 {
			t.Fatalf("frame(%+v) = %q: fields %q, want id, data, event and retry once each", u, frame, fields)
		}
		if len(evs) != 1 {
			t.Fatalf("frame(%+v) = %q dispatches %d events, want 1: %+v", u, frame, len(evs), evs)
		}
		ev := evs[0]
		if ev.Type != "status" || ev.ID != strconv.FormatUint(seq, 10) {
			t.Fatalf("frame(%+v) = %q: event %q id %q, want status id %d", u, frame, ev.Type, ev.ID, seq)
		}
		if ev.Retry != retry {
			t.Fatalf("frame(%+v) = %q: retry %q, want %s", u, frame, ev.Retry, retry)
		}
		var got flow.Update
		dec := json.NewDecoder(strings.NewReader(ev.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil || dec.More() {
			t.Fatalf("frame(%+v) = %q: data %q is not one update: %v", u, frame, ev.Data, err)
		}
		// json.Marshal turns each byte of invalid UTF-8 into U+FFFD, as
		// converting to []rune does (strings.ToValidUTF8 would merge runs).
		want := flow.Update{InterviewID: string([]rune(interviewID)), Status: string([]rune(status)), Seq: seq}
		if got != want {
			t.Fatalf("frame(%+v) = %q: data decodes to %+v, want %+v", u, frame, got, want)
		}
		if ev.Data != string(statusData(u)) {
			t.Fatalf("frame(%+v) data %q differs from the status data %q", u, ev.Data, statusData(u))
		}
	})
}
