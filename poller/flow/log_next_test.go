package flow

import (
	"slices"
	"testing"
	"time"
)

// Helpers shared by the Log tests (log_next_test.go, log_merge_test.go).
// Every change is of interview "a" and numbered at a fixed time, as a node
// (this one or another) numbers a first change: a plain view, no path.

// changeAt is the change of interview "a" to status, numbered at at.
func changeAt(status string, at time.Time) Update {
	u := Update{InterviewID: "a", Status: status}
	u.Seq = IDAt(at, u)
	return u
}

// endAt is the end of interview "a" (end), keeping status, numbered at at.
func endAt(status, end string, at time.Time) Update {
	u := Update{InterviewID: "a", Status: status, End: end}
	u.Seq = IDAt(at, u)
	return u
}

// idThrough is the id stamped at at with view: a middle status's view
// tells the path to it (see path.go), e.g. 4+12*2 for POST through FACE.
func idThrough(at time.Time, view uint64) uint64 {
	return uint64(at.UnixMilli())*viewSpan + view
}

// logOf is the log of interview "a" that recorded stored (each stored in
// the shared copy), then alone (each numbered alone, the copy out of reach).
func logOf(stored, alone []Update) *Log {
	l := NewLog("a")
	for _, u := range stored {
		l.Append(u, true)
	}
	for _, u := range alone {
		l.Append(u, false)
	}
	return &l
}

func TestLogNext(t *testing.T) {
	now := time.UnixMilli(1796101200000)
	at := func(ms int) time.Time { return now.Add(time.Duration(ms) * time.Millisecond) }
	unknown, idv := changeAt(StatusUnknown, at(-3000)), changeAt(StatusIDValidationFinished, at(-2000))
	face, post := changeAt(StatusFaceValidationFinished, at(-1000)), changeAt(StatusPostProcessingFinished, at(-500))
	finished := changeAt(StatusFinished, at(-500))
	clientAhead := func(ahead time.Duration) func(*Log) {
		return func(l *Log) { l.Since(IDAt(now.Add(ahead), Update{Status: StatusUnknown}), now) }
	}

	tests := []struct {
		name          string
		stored, alone []Update
		prep          func(*Log) // more of the log's past; nil: none
		status, end   string
		overtaken     bool
		at            time.Time
		want          Update // zero: no change
	}{
		{"a first status always changes", nil, nil, nil, StatusUnknown, "", false, now, changeAt(StatusUnknown, now)},
		{"a first status changes even from an overtaken read", nil, nil, nil, StatusFaceValidationFinished, "", true, now, changeAt(StatusFaceValidationFinished, now)},
		{"a session not found before any status ends", nil, nil, nil, "", EndNotFound, false, now, endAt("", EndNotFound, now)},
		{"the same status again: no change", []Update{unknown, idv}, nil, nil, StatusIDValidationFinished, "", false, now, Update{}},
		{"UNKNOWN after the first ID check: no change", []Update{unknown, idv}, nil, nil, StatusUnknown, "", false, now, Update{}},
		{"a late webhook retry (FACE, POST, then FACE again): no change", []Update{idv, face, post}, nil, nil, StatusFaceValidationFinished, "", false, now, Update{}},
		{"a middle status not seen yet: a change whose id tells the path through FACE", []Update{idv, face}, nil, nil, StatusPostProcessingFinished, "", false, now,
			Update{InterviewID: "a", Status: StatusPostProcessingFinished, Seq: idThrough(now, 4+12*2)}},
		{"an overtaken read in no order with the current status: no change", []Update{idv, face}, nil, nil, StatusPostProcessingFinished, "", true, now, Update{}},
		{"an overtaken read that finishes the flow counts", []Update{idv, face}, nil, nil, StatusFinished, "", true, now, changeAt(StatusFinished, now)},
		{"the flow expires unfinished: ended, the last status kept", []Update{idv, face}, nil, nil, StatusExpired, EndExpired, false, now, endAt(StatusFaceValidationFinished, EndExpired, now)},
		{"the upstream forgets an unfinished flow: ended, the last status kept", []Update{idv, post}, nil, nil, "", EndNotFound, false, now, endAt(StatusPostProcessingFinished, EndNotFound, now)},
		{"an expiry after ONBOARDING_FINISHED: no change", []Update{face, finished}, nil, nil, StatusExpired, EndExpired, false, now, Update{}},
		{"not found after a review's outcome: no change", []Update{finished, changeAt(StatusManualReviewApproved, at(-100))}, nil, nil, "", EndNotFound, false, now, Update{}},
		{"a status after the end: no change", []Update{face, endAt(StatusFaceValidationFinished, EndExpired, at(-100))}, nil, nil, StatusFinished, "", false, now, Update{}},
		{"a second end: no change", []Update{face, endAt(StatusFaceValidationFinished, EndExpired, at(-100))}, nil, nil, "", EndNotFound, false, now, Update{}},
		{"numbered above the current change, stamped by a clock ahead", []Update{changeAt(StatusUnknown, at(2000))}, nil, nil, StatusIDValidationFinished, "", false, now, changeAt(StatusIDValidationFinished, at(2001))},
		{"numbered at a time before the current stamp: still above it", []Update{changeAt(StatusUnknown, now)}, nil, nil, StatusIDValidationFinished, "", false, at(-60000), changeAt(StatusIDValidationFinished, at(1))},
		{"numbered above the stored change, though this node skipped it", []Update{unknown}, []Update{face},
			func(l *Log) { l.Merge([]Update{changeAt(StatusIDValidationFinished, at(5000))}) }, // moved past, held alone: skipped
			StatusPostProcessingFinished, "", false, now, Update{InterviewID: "a", Status: StatusPostProcessingFinished, Seq: idThrough(at(5001), 4+12*2)}},
		{"numbered above a client's id ahead of the clock", []Update{unknown}, nil, clientAhead(5 * time.Second), StatusIDValidationFinished, "", false, now, changeAt(StatusIDValidationFinished, at(5001))},
		{"a client's id far ahead lifts the numbering by floorAhead at most", []Update{unknown}, nil, clientAhead(50 * time.Second), StatusIDValidationFinished, "", false, now,
			changeAt(StatusIDValidationFinished, now.Add(floorAhead+time.Millisecond))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := logOf(tt.stored, tt.alone)
			if tt.prep != nil {
				tt.prep(l)
			}
			cur := l.Current()
			got, ok := l.Next(tt.status, tt.end, tt.overtaken, tt.at)
			if wantOK := tt.want != (Update{}); ok != wantOK {
				t.Fatalf("Next(%q, %q, %v) = %+v, %v; want ok %v", tt.status, tt.end, tt.overtaken, got, ok, wantOK)
			}
			if !ok && got != cur {
				t.Fatalf("Next(%q, %q) = %+v with no change, want the current %+v", tt.status, tt.end, got, cur)
			}
			if ok && got != tt.want {
				t.Fatalf("Next(%q, %q) = %+v, want %+v", tt.status, tt.end, got, tt.want)
			}
			if ok && (got.Seq <= cur.Seq || got.Seq <= l.Stored().Seq) {
				t.Fatalf("Next numbered %d, not above the current %d and the stored %d", got.Seq, cur.Seq, l.Stored().Seq)
			}
			if l.Current() != cur {
				t.Fatalf("Next recorded %+v; only Append records", l.Current())
			}
		})
	}
}

func TestLogAppendFollows(t *testing.T) {
	now := time.UnixMilli(1796101200000)
	unknown, idv, face := firstChanges(now)

	tests := []struct {
		name          string
		stored, alone []Update
		shared        []Update // merged after: the shared copy's tail, once Reconcile stored it
		wantStored    Update
		follows       map[uint64]bool // prev: Follows(prev)
	}{
		{"an empty log: a first change follows nothing stored", nil, nil, nil, Update{}, map[uint64]bool{0: true, unknown.Seq: false}},
		{"a stored change: the next stored change follows it, and only it", []Update{unknown, idv}, nil, nil, idv,
			map[uint64]bool{idv.Seq: true, unknown.Seq: false, 0: false}},
		{"a change numbered alone: nothing follows until it is shared", []Update{unknown, idv}, []Update{face}, nil, idv,
			map[uint64]bool{idv.Seq: false, face.Seq: false, 0: false}},
		{"a first change numbered alone: nothing follows, not even on nothing", nil, []Update{unknown}, nil, Update{},
			map[uint64]bool{0: false, unknown.Seq: false}},
		{"a change numbered alone, then stored: the next follows it", []Update{unknown, idv}, []Update{face}, []Update{face}, face,
			map[uint64]bool{face.Seq: true, idv.Seq: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := logOf(tt.stored, tt.alone)
			l.Merge(tt.shared)
			history := append(slices.Clone(tt.stored), tt.alone...)
			if !slices.Equal(l.history, history) {
				t.Fatalf("history = %v, want %v", l.history, history)
			}
			if n := len(history); n > 0 && l.Current() != history[n-1] {
				t.Fatalf("Current() = %+v, want the last change appended, %+v", l.Current(), history[n-1])
			}
			if l.Stored() != tt.wantStored {
				t.Fatalf("Stored() = %+v, want %+v", l.Stored(), tt.wantStored)
			}
			for prev, want := range tt.follows {
				if got := l.Follows(prev); got != want {
					t.Errorf("Follows(%d) = %v, want %v", prev, got, want)
				}
			}
		})
	}
}

// firstChanges are a flow's first three changes, a second apart, the last
// a second before now.
func firstChanges(now time.Time) (unknown, idv, face Update) {
	return changeAt(StatusUnknown, now.Add(-3*time.Second)), changeAt(StatusIDValidationFinished, now.Add(-2*time.Second)),
		changeAt(StatusFaceValidationFinished, now.Add(-time.Second))
}
