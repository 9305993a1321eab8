package sse

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/poller"
)

// fixedMemory is a hand-written poller memory.
type fixedMemory []poller.Update

func (m fixedMemory) Since(_ string, seq uint64) []poller.Update {
	var out []poller.Update
	for _, u := range m {
		if u.Seq > seq {
			out = append(out, u)
		}
	}
	return out
}

func (m fixedMemory) Gate(_ string, held, seq uint64) (uint64, bool) { return poller.Gate(held, seq) }

func (m fixedMemory) Last(string) (poller.Update, bool) {
	if len(m) == 0 {
		return poller.Update{}, false
	}
	return m[len(m)-1], true
}

// TestConnGate drives a conn the way r3labs' ServeHTTP does and checks what
// reaches the client.
func TestConnGate(t *testing.T) {
	b, err := NewBroker(BrokerConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mem := fixedMemory{{InterviewID: "a", Status: "UNKNOWN", Seq: 1}, {InterviewID: "a", Status: "ID_VALIDATION_FINISHED", Seq: 2}}
	frame := func(u poller.Update) string { return string(updateFrame(u, b.cfg.Retry)) }
	retryHint := string(retryFrame(b.cfg.Retry.Milliseconds()))

	tests := []struct {
		name     string
		lastSeq  uint64
		mem      fixedMemory
		frames   []string // what r3labs writes after its first Flush
		want     string
		canceled bool
	}{
		{
			name: "snapshot first, then newer events",
			mem:  mem,
			frames: []string{
				frame(mem[1]), // raced with the snapshot: already sent
				": heartbeat\n\n",
				frame(poller.Update{InterviewID: "a", Status: "X", Seq: 3}),
			},
			want: frame(mem[0]) + frame(mem[1]) + ": heartbeat\n\n" + frame(poller.Update{InterviewID: "a", Status: "X", Seq: 3}),
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
				{InterviewID: "a", Status: poller.StatusFinished, Seq: 1796101198100*1000 + 7}}[:1],
			frames: []string{
				frame(poller.Update{InterviewID: "a", Status: "GOVERNMENT_VALIDATION_FINISHED", Seq: 1796101198050*1000 + 6}),
				frame(poller.Update{InterviewID: "a", Status: poller.StatusFinished, Seq: 1796101198100*1000 + 7}),
			},
			want: retryHint + frame(poller.Update{InterviewID: "a", Status: "GOVERNMENT_VALIDATION_FINISHED", Seq: 1796101200001*1000 + 6 + 12*4}) +
				frame(poller.Update{InterviewID: "a", Status: poller.StatusFinished, Seq: 1796101200002*1000 + 7}),
		},
		{
			name:    "a status behind the client's in the flow is not sent, whatever its id",
			lastSeq: 1796101200000*1000 + 5,
			mem:     fixedMemory{{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: 1796101200000*1000 + 5}},
			frames: []string{
				frame(poller.Update{InterviewID: "a", Status: "ID_VALIDATION_FINISHED", Seq: 1796101300000*1000 + 2}),
				frame(poller.Update{InterviewID: "a", Status: "UNKNOWN", Seq: 1796101400000*1000 + 1}),
			},
			want: retryHint,
		},
		{
			// Ids carry the view of their status (see poller.Gate): 2 is
			// ID_VALIDATION_FINISHED, 5 FACE_VALIDATION_FINISHED.
			name:    "a change numbered apart by another node, showing what the client shows, is not sent again",
			lastSeq: 1796101200000*1000 + 2,
			mem:     fixedMemory{{InterviewID: "a", Status: "ID_VALIDATION_FINISHED", Seq: 1796101100000*1000 + 2}},
			frames: []string{
				frame(poller.Update{InterviewID: "a", Status: "ID_VALIDATION_FINISHED", Seq: 1796101300000*1000 + 2}),
				frame(poller.Update{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: 1796101400000*1000 + 5}),
			},
			want: retryHint + frame(poller.Update{InterviewID: "a", Status: "FACE_VALIDATION_FINISHED", Seq: 1796101400000*1000 + 5}),
		},
		{
			name:     "the final status ends the stream",
			mem:      append(mem[:2:2], poller.Update{InterviewID: "a", Status: poller.StatusFinished, Seq: 3}),
			lastSeq:  2,
			frames:   []string{": heartbeat\n\n"},
			want:     frame(poller.Update{InterviewID: "a", Status: poller.StatusFinished, Seq: 3}),
			canceled: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := newConn(rec, b, tt.mem, "a", "127.0.0.1", tt.lastSeq, cancel)
			c.WriteHeader(200)
			c.Flush()
			for _, f := range tt.frames {
				// r3labs writes a frame in several pieces.
				for _, piece := range strings.SplitAfter(f, "\n") {
					c.Write([]byte(piece))
				}
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

func TestFrameID(t *testing.T) {
	for frame, want := range map[string]uint64{
		"id: 0\ndata: x\n\n":                    0,
		"id: 1795861561436\ndata: x\n\n":        1795861561436,
		"id: 9999999999999999999\ndata: x\n\n":  9999999999999999999,
		"id: 99999999999999999999\ndata: x\n\n": 1<<64 - 1, // too long: no id
		"id: 12a\n\n":                           1<<64 - 1,
		"id: \n\n":                              1<<64 - 1,
		": heartbeat\n\n":                       1<<64 - 1,
	} {
		got, ok := frameID([]byte(frame))
		if !ok {
			got = 1<<64 - 1
		}
		if got != want {
			t.Errorf("frameID(%q) = %d, want %d", frame, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { frameID([]byte("id: 1795861561436\ndata: x\n\n")) }); n != 0 {
		t.Errorf("frameID allocates %v times", n)
	}
}
