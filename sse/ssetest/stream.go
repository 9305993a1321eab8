package ssetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// Read parses the event stream r until it ends, or until emit returns
// false. Blocks that set only a retry time are dispatched too (see
// Parser.KeepRetry).
func Read(r io.Reader, emit func(Event) bool) error {
	p := Parser{KeepRetry: true}
	buf := make([]byte, 32<<10)
	stopped := false
	for !stopped {
		n, err := r.Read(buf)
		if n > 0 {
			_ = p.Feed(buf[:n], func(ev Event) { // no line cap: Feed cannot fail
				stopped = stopped || !emit(ev)
			})
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Status decodes a status event: its data is the update, and its id the
// update's seq.
func Status(ev Event) (flow.Update, error) {
	var u flow.Update
	if ev.Type != "status" {
		return u, fmt.Errorf("event %+v is not a status event", ev)
	}
	if err := json.Unmarshal([]byte(ev.Data), &u); err != nil {
		return u, fmt.Errorf("event data %q: %w", ev.Data, err)
	}
	if ev.ID == "" || ev.ID != strconv.FormatUint(u.Seq, 10) {
		return u, fmt.Errorf("event id %q does not match seq %d", ev.ID, u.Seq)
	}
	return u, nil
}

// Update decodes a status event as Status does, or the end of a session
// (an "end" event) into the update it stands for: End is its reason, Seq
// its id, Status empty.
func Update(ev Event) (flow.Update, error) {
	if ev.Type != "end" {
		return Status(ev)
	}
	var end struct {
		InterviewID string `json:"interviewId"`
		Reason      string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &end); err != nil || end.Reason == "" {
		return flow.Update{}, fmt.Errorf("end event data %q: want interviewId and reason", ev.Data)
	}
	seq, err := strconv.ParseUint(ev.ID, 10, 64)
	if err != nil {
		return flow.Update{}, fmt.Errorf("end event id %q: %w", ev.ID, err)
	}
	return flow.Update{InterviewID: end.InterviewID, Seq: seq, End: end.Reason}, nil
}

// Stream is an event stream read in the background, as a browser tab would.
type Stream struct {
	Resp   *http.Response
	Events chan Event // closed at the end of the stream
}

// Open sends req and, when it answers 200, reads its events in the
// background. Any other answer is returned with Events already closed. The
// response body is closed when the test ends.
func Open(tb testing.TB, client *http.Client, req *http.Request) *Stream {
	tb.Helper()
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	s := &Stream{Resp: resp, Events: make(chan Event, 4096)}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(s.Events)
		return s
	}
	go func() {
		defer close(s.Events)
		Read(resp.Body, func(ev Event) bool { s.Events <- ev; return true })
	}()
	return s
}

// Next returns the next event, or fails when none arrives within 10s (a
// guard against hanging, not a measurement) or the stream ended.
func (s *Stream) Next(tb testing.TB) Event {
	tb.Helper()
	select {
	case ev, ok := <-s.Events:
		if !ok {
			tb.Fatal("stream ended, want another event")
		}
		return ev
	case <-time.After(10 * time.Second):
		tb.Fatal("no event within 10s")
	}
	return Event{}
}

// NextStatus returns the next event, which must be a status event.
func (s *Stream) NextStatus(tb testing.TB) flow.Update {
	tb.Helper()
	u, err := Status(s.Next(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// Ended waits up to 10s for the end of the stream and returns the events
// still unread.
func (s *Stream) Ended(tb testing.TB) []Event {
	tb.Helper()
	var rest []Event
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.Events:
			if !ok {
				return rest
			}
			rest = append(rest, ev)
		case <-deadline:
			tb.Fatal("stream still open after 10s")
		}
	}
}
