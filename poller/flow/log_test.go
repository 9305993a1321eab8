package flow

import (
	"slices"
	"testing"
	"time"
)

// TestSinceNeverGoesBack drives Log.Since, what a reconnecting
// client gets, with ids this node issued and ids it never did: never an
// id at or below the client's, never the status it shows again, never a
// status behind it in the flow.
func TestSinceNeverGoesBack(t *testing.T) {
	const t0 = 1796101200000 // a stamp, in ms
	at := func(stamp uint64, status string) Update {
		u := Update{InterviewID: "a", Status: status}
		u.Seq = renumber(stamp, u)
		return u
	}
	id := func(stamp uint64, status string) uint64 { return at(stamp, status).Seq }
	unknown, idv := at(t0, StatusUnknown), at(t0+100, StatusIDValidationFinished)
	face := at(t0+200, StatusFaceValidationFinished)
	again := at(t0+300, StatusFaceValidationFinished) // renumbered after an outage
	finished := at(t0+400, StatusFinished)
	history := []Update{unknown, idv, face, again}

	tests := []struct {
		name    string
		history []Update
		last    uint64
		want    []Update
	}{
		{"first connect: every change, once each", history, 0, []Update{unknown, idv, face}},
		{"a remembered id: the changes after it", history, idv.Seq, []Update{face}},
		{"a remembered id, then only a renumbering", history, face.Seq, nil},
		{"the current id", history, again.Seq, nil},
		{"another node's id, older, a status remembered here: the changes after it", history, id(t0+150, StatusIDValidationFinished), []Update{face}},
		{"another node's id, later, a status remembered here: the changes after it, renumbered", []Update{unknown, idv, face}, id(t0+250, StatusIDValidationFinished), []Update{at(t0+251, StatusFaceValidationFinished)}},
		{"another node's id, older, a status not remembered here", []Update{unknown, face}, id(t0+150, StatusIDValidationFinished), []Update{face}},
		{"another node's id, older, the same status", history, id(t0+250, StatusFaceValidationFinished), nil},
		{"another node's id, later, the same status", history, id(t0+900, StatusFaceValidationFinished), nil},
		{"another node's id, later, a status not remembered here", history, id(t0+900, StatusPostProcessingFinished), nil},
		{"another node's id, later, a status behind not remembered here", []Update{idv, face}, id(t0+900, StatusUnknown), []Update{at(t0+901, StatusFaceValidationFinished)}},
		{"another node's id, later, the first status", history, id(t0+900, StatusUnknown), []Update{at(t0+901, StatusIDValidationFinished), at(t0+902, StatusFaceValidationFinished)}},
		{"another node's id, finished, while this node is not", history, id(t0+250, StatusFinished), nil},
		{"another node's id, later, unfinished, while this node finished", []Update{idv, finished}, id(t0+900, StatusFaceValidationFinished), []Update{at(t0+901, StatusFinished)}},
		{"an id of an older gateway (no view)", history, t0, []Update{again}},
		{"an id of an older gateway (no view), the flow not started", []Update{unknown}, t0, []Update{unknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLog("a")
			l.history = tt.history
			got := l.Since(tt.last, Now())
			if !slices.Equal(got, tt.want) {
				t.Fatalf("since(%d) = %v, want %v", tt.last, got, tt.want)
			}
			for _, u := range got {
				if tt.last != 0 && (u.Seq <= tt.last || Shows(tt.last, u.Seq)) {
					t.Fatalf("since(%d) sent %v, which that client has seen", tt.last, u)
				}
			}
		})
	}
}

func TestPlausible(t *testing.T) {
	now := uint64(time.Now().UnixMilli())
	for seq, want := range map[uint64]bool{
		3:                          true, // an older gateway's id
		now:                        true, // an older gateway's id: plain milliseconds
		now*1000 + 7:               true,
		(now+50_000)*1000 + 7:      true, // another node's clock, 50s ahead
		(now+3_600_000)*1000 + 7:   false,
		18_446_744_073_709_551_615: false,
	} {
		if got := Plausible(seq, time.Now()); got != want {
			t.Errorf("Plausible(%d) = %v, want %v", seq, got, want)
		}
	}
}

// TestGateAgreesWithSince: on an open stream a client gets of a change
// what it would get of it reconnecting: a middle status the node recorded
// before the client's status (two changes of one batch, recorded whole
// before either is published) is behind the client, not news.
func TestGateAgreesWithSince(t *testing.T) {
	const t0 = 1796101200000
	at := func(stamp uint64, status string) Update {
		u := Update{InterviewID: "a", Status: status}
		u.Seq = renumber(stamp, u)
		return u
	}
	idv := at(t0, StatusIDValidationFinished)
	post := at(t0+100, StatusPostProcessingFinished)
	face := at(t0+101, StatusFaceValidationFinished)
	l := NewLog("a")
	l.history = []Update{idv, post, face}
	held := at(t0+50, StatusFaceValidationFinished).Seq // from a node that never saw POST
	if got := l.since(held); len(got) != 0 {
		t.Fatalf("since(a face id) = %v, want nothing", got)
	}
	if send, ok := l.Gate(held, post.Seq); ok {
		t.Fatalf("gate(a face id, %v recorded before the face check) sent it as %d, want it held back", post, send)
	}
	// A middle status recorded after the client's is news.
	l.history = []Update{idv, face, post}
	if _, ok := l.Gate(held, post.Seq); !ok {
		t.Fatalf("gate(a face id, %v recorded after the face check) held it back, want it sent", post)
	}
}

// TestFloorStaysNearTheClock: an id a client brings, stamped far ahead
// (within what Plausible takes), lifts the interview's next ids no
// further than floorAhead past this node's clock, so they stay plausible
// to a node whose clock is behind, and the client still gets the change,
// numbered above its id.
func TestFloorStaysNearTheClock(t *testing.T) {
	now := time.UnixMilli(1796101200000)
	l := NewLog("a")
	l.Append(Update{InterviewID: "a", Status: StatusUnknown, Seq: IDAt(now, Update{Status: StatusUnknown})}, true)
	ahead := IDAt(now.Add(clockSkew-time.Second), Update{Status: StatusUnknown})
	if !Plausible(ahead, now) {
		t.Fatal("an id within clockSkew is not plausible")
	}
	l.Since(ahead, now)
	limit := uint64(now.Add(floorAhead).UnixMilli())
	if l.floor > limit {
		t.Fatalf("the floor went %v ahead of the clock, want at most floorAhead (%v)", time.Duration(l.floor-uint64(now.UnixMilli()))*time.Millisecond, floorAhead)
	}
	next, ok := l.Next(StatusIDValidationFinished, "", false, now)
	if !ok {
		t.Fatal("IDV after UNKNOWN is no change")
	}
	if send, ok := Gate(ahead, next.Seq); !ok || send <= ahead {
		t.Fatalf("Gate(the id ahead, the next change) = %d, %v; want it sent above %d", send, ok, ahead)
	}
}

// renumber is the id of u stamped at stamp, with a plain view.
func renumber(stamp uint64, u Update) uint64 { return stamp*viewSpan + viewOf(u) }
