package sse

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pushgate/pushgate/poller"
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
	b, err := NewBroker(BrokerConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(b.Close)
	retry := strconv.FormatInt(b.cfg.Retry.Milliseconds(), 10)
	f.Fuzz(func(t *testing.T, interviewID, status string, seq uint64) {
		// Escaping works a character at a time; longer strings find
		// nothing more, and make every new input take seconds to minimize.
		interviewID, status = interviewID[:min(len(interviewID), 64)], status[:min(len(status), 64)]
		u := poller.Update{InterviewID: interviewID, Status: status, Seq: seq}
		frame := b.frame(u)
		if !utf8.Valid(frame) {
			t.Fatalf("frame(%+v) = %q: not UTF-8, which EventSource decodes with replacements", u, frame)
		}
		evs, fields := parseEventStream(frame)
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
		if ev.typ != "status" || ev.id != strconv.FormatUint(seq, 10) {
			t.Fatalf("frame(%+v) = %q: event %q id %q, want status id %d", u, frame, ev.typ, ev.id, seq)
		}
		if len(ev.retries) != 1 || ev.retries[0] != retry {
			t.Fatalf("frame(%+v) = %q: retry %q, want one numeric %s", u, frame, ev.retries, retry)
		}
		var got poller.Update
		dec := json.NewDecoder(strings.NewReader(ev.data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil || dec.More() {
			t.Fatalf("frame(%+v) = %q: data %q is not one update: %v", u, frame, ev.data, err)
		}
		// json.Marshal turns each byte of invalid UTF-8 into U+FFFD, as
		// converting to []rune does (strings.ToValidUTF8 would merge runs).
		want := poller.Update{InterviewID: string([]rune(interviewID)), Status: string([]rune(status)), Seq: seq}
		if got != want {
			t.Fatalf("frame(%+v) = %q: data decodes to %+v, want %+v", u, frame, got, want)
		}
		if e := b.event(u); ev.data != string(e.Data) {
			t.Fatalf("frame(%+v) data %q differs from the published event's %q", u, ev.data, e.Data)
		}
	})
}

// parsedEvent is an event as EventSource dispatches it.
type parsedEvent struct {
	typ, data, id string
	retries       []string // retry values seen since the previous dispatch that set the reconnection time
}

// parseEventStream interprets b as EventSource does (WHATWG HTML, "Event
// stream interpretation"), b being the whole stream. It returns the
// dispatched events and the name of every field in order, ":" standing for
// a comment line.
func parseEventStream(b []byte) ([]parsedEvent, []string) {
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	var (
		evs           []parsedEvent
		fields        []string
		typ, data, id string
		retries       []string
	)
	for len(b) > 0 {
		end := bytes.IndexAny(b, "\r\n")
		if end < 0 {
			break // an unterminated last line is never processed
		}
		line := string(b[:end])
		if b[end] == '\r' && end+1 < len(b) && b[end+1] == '\n' {
			end++
		}
		b = b[end+1:]
		if line == "" {
			if data != "" {
				evs = append(evs, parsedEvent{typ: typ, data: strings.TrimSuffix(data, "\n"), id: id, retries: retries})
				retries = nil
			}
			typ, data = "", ""
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		if name == "" {
			fields = append(fields, ":")
			continue
		}
		fields = append(fields, name)
		switch name {
		case "event":
			typ = value
		case "data":
			data += value + "\n"
		case "id":
			if !strings.Contains(value, "\x00") {
				id = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				retries = append(retries, value)
			}
		}
	}
	for i := range evs {
		if evs[i].typ == "" {
			evs[i].typ = "message"
		}
	}
	return evs, fields
}

// TestParseEventStream pins the parser FuzzEventFrame judges frames with.
func TestParseEventStream(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []parsedEvent
		fields   []string
	}{
		{"one event", "id: 1\ndata: {}\nevent: status\nretry: 2000\n\n",
			[]parsedEvent{{typ: "status", data: "{}", id: "1", retries: []string{"2000"}}},
			[]string{"id", "data", "event", "retry"}},
		{"CR and CRLF end lines", "data:a\r\rdata:  b\r\n\r\n",
			[]parsedEvent{{typ: "message", data: "a"}, {typ: "message", data: " b"}},
			[]string{"data", "data"}},
		{"data lines join, id carries over", "id: 7\ndata: a\ndata\n\ndata: c\n\n",
			[]parsedEvent{{typ: "message", data: "a\n", id: "7"}, {typ: "message", data: "c", id: "7"}},
			[]string{"id", "data", "data", "data"}},
		{"no data, no dispatch", ": hi\nevent: status\nretry: x\n\n",
			nil, []string{":", "event", "retry"}},
		{"NUL id and bad retry ignored", "id: 1\x00\nretry: 1s\ndata: a\n\n",
			[]parsedEvent{{typ: "message", data: "a"}}, []string{"id", "retry", "data"}},
		{"unterminated event dropped", "\ufeffdata: a\n\ndata: b\n",
			[]parsedEvent{{typ: "message", data: "a"}}, []string{"data", "data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, fields := parseEventStream([]byte(tc.in))
			if !reflect.DeepEqual(evs, tc.want) || !reflect.DeepEqual(fields, tc.fields) {
				t.Fatalf("parseEventStream(%q) = %+v, %q; want %+v, %q", tc.in, evs, fields, tc.want, tc.fields)
			}
		})
	}
}
