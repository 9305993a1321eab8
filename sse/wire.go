package sse

import (
	"encoding/json"
	"strconv"
	"time"

	r3 "github.com/r3labs/sse/v2"

	"github.com/pushgate/pushgate/poller/flow"
)

// This file owns the wire format of a stream. conn writes every frame
// itself, built from the update it stands for; r3labs only wakes the
// stream up (wakeEvent), and its own bytes are never sent. A status event
// on the wire:
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
// stream.

// wakeEvent is what the Broker publishes into r3labs' stream of an
// interview: it carries nothing (the change waits in each conn's queue)
// but makes r3labs' goroutine of every subscriber flush its conn. A
// fresh event each time: r3labs may write into it. A comment, as an
// event with neither data nor comment would flush nothing.
func wakeEvent() *r3.Event { return &r3.Event{Comment: []byte("wake")} }

// heartbeatFrame is the comment that keeps idle streams open through
// proxies.
var heartbeatFrame = []byte(": heartbeat\n\n")

// updateFrame is the wire form of an update's event: a status change, or
// the end of the session.
func updateFrame(u flow.Update, retry time.Duration) []byte {
	name, data := "status", statusData(u)
	if u.End != "" {
		name, data = "end", endData(u)
	}
	out := make([]byte, 0, 64+len(data))
	out = append(out, "id: "...)
	out = strconv.AppendUint(out, u.Seq, 10)
	out = append(out, "\ndata: "...)
	out = append(out, data...)
	out = append(out, "\nevent: "...)
	out = append(out, name...)
	out = append(out, "\nretry: "...)
	out = strconv.AppendInt(out, retry.Milliseconds(), 10)
	return append(out, "\n\n"...)
}

// retryFrame is a retry hint alone, the last thing an ended stream writes.
func retryFrame(ms int64) []byte {
	return []byte("retry: " + strconv.FormatInt(ms, 10) + "\n\n")
}

func statusData(u flow.Update) []byte {
	return mustJSON(flow.Update{InterviewID: u.InterviewID, Status: u.Status, Seq: u.Seq})
}

func endData(u flow.Update) []byte {
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
