package sse

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/pushgate/pushgate/poller/flow"
)

// fixedMemory is a hand-written poller memory.
type fixedMemory []flow.Update

func (m fixedMemory) Since(_ string, seq uint64) []flow.Update {
	var out []flow.Update
	for _, u := range m {
		if u.Seq > seq {
			out = append(out, u)
		}
	}
	return out
}

func (m fixedMemory) Gate(_ string, held, seq uint64) (uint64, bool) { return flow.Gate(held, seq) }

func (m fixedMemory) Last(string) (flow.Update, bool) {
	if len(m) == 0 {
		return flow.Update{}, false
	}
	return m[len(m)-1], true
}

// TestConnGate drives a conn the way the Broker and r3labs' ServeHTTP do
// (a change is published into the stream, then r3labs' goroutine writes
// its wake-up and flushes) and checks what reaches the client.
func TestConnGate(t *testing.T) {
	b, mem := connTestBroker(t), connTestMemory()
	frames := map[string]flow.Update{} // the change of each frame the test publishes
	frame := func(u flow.Update) string {
		f := string(updateFrame(u, b.cfg.Retry))
		frames[f] = u
		return f
	}
	retryHint := string(retryFrame(b.cfg.Retry.Milliseconds()))

	tests := []struct {
		name     string
		lastSeq  uint64
		mem      fixedMemory
		frames   []string // what is published after the first Flush: a change's frame, or a heartbeat
		want     string
		canceled bool
	}{
		{
			name: "snapshot first, then newer events",
			mem:  mem,
			frames: []string{
				frame(mem[1]), // raced with the snapshot: already sent
				": heartbeat\n\n",
				frame(flow.Update{InterviewID: "a", Status: "X", Seq: 3}),
			},
			want: frame(mem[0]) + frame(mem[1]) + ": heartbeat\n\n" + frame(flow.Update{InterviewID: "a", Status: "X", Seq: 3}),
		},
		{
			name:    "Last-Event-ID skips what the client has",
			lastSeq: 1,
			mem:     mem,
			frames:  []string{frame(mem[0])},
			want:    frame(mem[1]),
		},
		{
			// Another node, its clock 2 s behind the one the client came
			// from, numbered its changes below the client's id (their
			// cluster out of reach): they are news to the client all the
			// same, and are sent just above its id, the government
			// validation with the view of a path through the face check
			// (6 + 12*4); the end of the flow ends the stream.
			name:    "changes numbered below the client's id are sent above it",
			lastSeq: 1796101200000*1000 + 5,
			mem: fixedMemory{{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: 1796101198000*1000 + 5},
				{InterviewID: "a", Status: flow.StatusFinished, Seq: 1796101198100*1000 + 7}}[:1],
			frames: []string{
				frame(flow.Update{InterviewID: "a", Status: "GOVERNMENT_VALIDATION_FINISHED", Seq: 1796101198050*1000 + 6}),
				frame(flow.Update{InterviewID: "a", Status: flow.StatusFinished, Seq: 1796101198100*1000 + 7}),
			},
			want: retryHint + frame(flow.Update{InterviewID: "a", Status: "GOVERNMENT_VALIDATION_FINISHED", Seq: 1796101200001*1000 + 6 + 12*4}) +
				frame(flow.Update{InterviewID: "a", Status: flow.StatusFinished, Seq: 1796101200002*1000 + 7}),
		},
		{
			name:    "a status behind the client's in the flow is not sent, whatever its id",
			lastSeq: 1796101200000*1000 + 5,
			mem:     fixedMemory{{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: 1796101200000*1000 + 5}},
			frames: []string{
				frame(flow.Update{InterviewID: "a", Status: "ID_VALIDATION_FINISHED", Seq: 1796101300000*1000 + 2}),
				frame(flow.Update{InterviewID: "a", Status: "UNKNOWN", Seq: 1796101400000*1000 + 1}),
			},
			want: retryHint,
		},
		{
			// Ids carry the view of their status (see flow.Gate): 2 is
			// ID_VALIDATION_FINISHED, 5 FACE_VALIDATION_FINISHED.
			name:    "a change numbered apart by another node, showing what the client shows, is not sent again",
			lastSeq: 1796101200000*1000 + 2,
			mem:     fixedMemory{{InterviewID: "a", Status: "ID_VALIDATION_FINISHED", Seq: 1796101100000*1000 + 2}},
			frames: []string{
				frame(flow.Update{InterviewID: "a", Status: "ID_VALIDATION_FINISHED", Seq: 1796101300000*1000 + 2}),
				frame(flow.Update{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: 1796101400000*1000 + 5}),
			},
			want: retryHint + frame(flow.Update{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: 1796101400000*1000 + 5}),
		},
		{
			name:     "the final status ends the stream",
			mem:      append(mem[:2:2], flow.Update{InterviewID: "a", Status: flow.StatusFinished, Seq: 3}),
			lastSeq:  2,
			frames:   []string{": heartbeat\n\n"},
			want:     frame(flow.Update{InterviewID: "a", Status: flow.StatusFinished, Seq: 3}),
			canceled: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := newConn(rec, b, tt.mem, "a", "127.0.0.1", tt.lastSeq, cancel)
			s := joined(c)
			c.WriteHeader(200)
			c.Flush()
			for _, f := range tt.frames {
				if f == string(heartbeatFrame) {
					s.heartbeat()
				} else {
					u := frames[f]
					s.publish(u, updateFrame(u, b.cfg.Retry))
				}
				// r3labs writes its wake-up in pieces, then flushes.
				c.Write([]byte(": wake\n"))
				c.Write([]byte("\n"))
				c.Flush()
			}
			if got := rec.Body.String(); got != tt.want {
				t.Fatalf("client got\n%q\nwant\n%q", got, tt.want)
			}
			if (ctx.Err() != nil) != tt.canceled {
				t.Fatalf("stream ended = %v, want %v", ctx.Err() != nil, tt.canceled)
			}
		})
	}
}

// TestConnPublishedBeforeSnapshot: changes published between the Broker's
// join and r3labs' first Flush are written after the snapshot, those it
// holds once only; the wake-ups r3labs delivers for them later, with
// nothing left to take, write nothing.
func TestConnPublishedBeforeSnapshot(t *testing.T) {
	b, mem := connTestBroker(t), connTestMemory()
	later := flow.Update{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: 3}
	rec := httptest.NewRecorder()
	_, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newConn(rec, b, mem, "a", "127.0.0.1", 0, cancel)
	s := joined(c)
	for _, u := range []flow.Update{mem[1], later} {
		s.publish(u, updateFrame(u, b.cfg.Retry))
	}
	c.WriteHeader(200)
	c.Flush() // the first: the snapshot, then what was published
	for range 2 {
		c.Write([]byte(": wake\n\n"))
		c.Flush()
	}
	want := string(updateFrame(mem[0], b.cfg.Retry)) + string(updateFrame(mem[1], b.cfg.Retry)) + string(updateFrame(later, b.cfg.Retry))
	if got := rec.Body.String(); got != want {
		t.Fatalf("client got\n%q\nwant\n%q", got, want)
	}
}

// connTestBroker is a Broker for a test to drive conns with by hand.
func connTestBroker(t *testing.T) *Broker {
	b, err := NewBroker(BrokerConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// connTestMemory is a flow's first two changes.
func connTestMemory() fixedMemory {
	return fixedMemory{{InterviewID: "a", Status: "UNKNOWN", Seq: 1}, {InterviewID: "a", Status: "ID_VALIDATION_FINISHED", Seq: 2}}
}

// joined gives c a stream of its own, as Broker.join does, and returns it.
func joined(c *conn) *stream {
	s := newStream()
	c.join(s)
	return s
}

// TestConnEndsOnAFinalStatusItShows: a client that reconnects holding the
// end of the flow from another node, before this node knew it, sees its
// stream end as soon as this node records and publishes that end, though
// nothing is written: it shows the end already.
func TestConnEndsOnAFinalStatusItShows(t *testing.T) {
	b := connTestBroker(t)
	const t0 = 1796101200000
	mem := fixedMemory{{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: t0*1000 + 5}}
	held := uint64((t0+2000)*1000 + 7) // ONBOARDING_FINISHED, numbered by another node
	rec := httptest.NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newConn(rec, b, &mem, "a", "127.0.0.1", held, cancel)
	s := joined(c)
	c.WriteHeader(200)
	c.Flush() // the snapshot: nothing the client lacks
	if ctx.Err() != nil {
		t.Fatal("the stream ended before this node knew the flow finished")
	}
	end := flow.Update{InterviewID: "a", Status: flow.StatusFinished, Seq: (t0+1000)*1000 + 7}
	mem = append(mem, end)
	s.publish(end, updateFrame(end, b.cfg.Retry))
	c.Flush()
	if want := string(retryFrame(b.cfg.Retry.Milliseconds())); rec.Body.String() != want {
		t.Fatalf("client got %q, want only the opening retry hint %q", rec.Body.String(), want)
	}
	if ctx.Err() == nil {
		t.Fatal("the stream stayed open after the end of the flow the client shows")
	}
}
