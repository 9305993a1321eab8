package sse

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	r3 "github.com/r3labs/sse/v2"

	"github.com/pushgate/pushgate/poller"
)

// This file owns everything that knows the wire format r3labs writes:
// the events pushgate publishes, the frames conn writes itself (the
// snapshot and the final retry hint) in the same format, and the parsing
// of a frame's id. A status event on the wire:
//
//	id: <seq>
//	data: {"interviewId":"...","onboardingStatus":"...","seq":<seq>}
//	event: status
//	retry: <ms>
//
// and the end of a session the upstream forgot, the last event of its
// stream:
//
//	id: <seq>
//	data: {"interviewId":"...","reason":"expired"}
//	event: end
//	retry: <ms>
//
// The data is JSON, so no upstream string can carry a raw newline into the
// stream, and an event is never empty (an empty one ends r3labs' streams).

// updateEvent builds the r3labs event of an update: a status change, or
// the end of the session. A new event for every publish: r3labs may write
// into it.
func updateEvent(u poller.Update, retry time.Duration) *r3.Event {
	name, data := "status", statusData(u)
	if u.End != "" {
		name, data = "end", endData(u)
	}
	return &r3.Event{
		ID:    []byte(strconv.FormatUint(u.Seq, 10)),
		Event: []byte(name),
		Data:  data,
		Retry: []byte(strconv.FormatInt(retry.Milliseconds(), 10)),
	}
}

// heartbeatEvent is the comment that keeps idle streams open through
// proxies.
func heartbeatEvent() *r3.Event { return &r3.Event{Comment: []byte("heartbeat")} }

// updateFrame is the wire form of an update's event, as r3labs writes it,
// for the snapshot a connection gets before any published change.
func updateFrame(u poller.Update, retry time.Duration) []byte {
	ev := updateEvent(u, retry)
	out := make([]byte, 0, 64+len(ev.Data))
	out = append(out, "id: "...)
	out = append(out, ev.ID...)
	out = append(out, "\ndata: "...)
	out = append(out, ev.Data...)
	out = append(out, "\nevent: "...)
	out = append(out, ev.Event...)
	out = append(out, "\nretry: "...)
	out = append(out, ev.Retry...)
	return append(out, "\n\n"...)
}

// retryFrame is a retry hint alone, the last thing an ended stream writes.
func retryFrame(ms int64) []byte {
	return []byte("retry: " + strconv.FormatInt(ms, 10) + "\n\n")
}

func statusData(u poller.Update) []byte {
	return mustJSON(poller.Update{InterviewID: u.InterviewID, Status: u.Status, Seq: u.Seq})
}

func endData(u poller.Update) []byte {
	return mustJSON(struct {
		InterviewID string `json:"interviewId"`
		Reason      string `json:"reason"`
	}{u.InterviewID, u.End})
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic("sse: encoding a status update: " + err.Error()) // strings and ints always encode
	}
	return data
}

// renumberFrame is frame, an update's event, under the id to instead of
// from: its id line, and the seq of a status event's data, which are the
// same number.
func renumberFrame(frame []byte, from, to uint64) []byte {
	f, t := strconv.FormatUint(from, 10), strconv.FormatUint(to, 10)
	out := bytes.Replace(frame, []byte("id: "+f+"\n"), []byte("id: "+t+"\n"), 1)
	return bytes.Replace(out, []byte(`"seq":`+f+"}"), []byte(`"seq":`+t+"}"), 1)
}

// frameID parses the "id: N" line r3labs writes first in a data frame.
func frameID(frame []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(frame, []byte("id: "))
	if !ok {
		return 0, false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	seq, err := strconv.ParseUint(string(line), 10, 64)
	return seq, err == nil
}
