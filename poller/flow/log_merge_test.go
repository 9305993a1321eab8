package flow

import (
	"slices"
	"testing"
	"time"
)

// The Log tests of bringing a node and the shared copy together: Merge,
// Load and Reconcile. Helpers are in log_next_test.go.

func TestLogMerge(t *testing.T) {
	now := time.UnixMilli(1796101200000)
	at := func(ms int) time.Time { return now.Add(time.Duration(ms) * time.Millisecond) }
	unknown, idv := changeAt(StatusUnknown, at(-3000)), changeAt(StatusIDValidationFinished, at(-2000))
	face, post := changeAt(StatusFaceValidationFinished, at(-1000)), changeAt(StatusPostProcessingFinished, at(-500))
	faceNow, postNow := changeAt(StatusFaceValidationFinished, now), changeAt(StatusPostProcessingFinished, now)
	postLater, finishedNow := changeAt(StatusPostProcessingFinished, at(1000)), changeAt(StatusFinished, now)
	faceExpired := endAt(StatusFaceValidationFinished, EndExpired, now)
	postExpired := Update{InterviewID: "a", Status: StatusPostProcessingFinished, End: EndExpired, Seq: faceExpired.Seq}
	goneNow := endAt("", EndNotFound, now) // numbered by a node that knew no status
	faceGone := Update{InterviewID: "a", Status: StatusFaceValidationFinished, End: EndNotFound, Seq: goneNow.Seq}

	tests := []struct {
		name           string
		stored, alone  []Update
		changes        []Update
		recorded, news []Update
		wantStored     Update
		history        []Update // ends with the current status
	}{
		{"changes this node has: nothing recorded", []Update{unknown, idv, face}, nil, []Update{idv, face}, nil, nil, face, []Update{unknown, idv, face}},
		{"a shared copy rolled back: nothing recorded, its tail taken as stored", []Update{unknown, idv, face}, nil, []Update{unknown, idv}, nil, nil, idv, []Update{unknown, idv, face}},
		{"another node's changes after the current one: news, in order", []Update{unknown}, nil, []Update{idv, face, postNow},
			[]Update{idv, face, postNow}, []Update{idv, face, postNow}, postNow, []Update{unknown, idv, face, postNow}},
		{"the current status renumbered: recorded, not news", []Update{idv, face}, nil, []Update{faceNow}, []Update{faceNow}, nil, faceNow, []Update{idv, face, faceNow}},
		{"renumbered, then a new status: only the new status is news", []Update{idv, face}, nil, []Update{faceNow, postLater},
			[]Update{faceNow, postLater}, []Update{postLater}, postLater, []Update{idv, face, faceNow, postLater}},
		{"a status after the session ended: skipped", []Update{face, endAt(StatusFaceValidationFinished, EndExpired, at(-500))}, nil, []Update{finishedNow},
			nil, nil, finishedNow, []Update{face, endAt(StatusFaceValidationFinished, EndExpired, at(-500))}},
		{"an end of a status this node moved past keeps this node's status", []Update{idv, face, post}, nil, []Update{faceExpired},
			[]Update{postExpired}, []Update{postExpired}, faceExpired, []Update{idv, face, post, postExpired}},
		{"an end numbered where no status was known keeps this node's status", []Update{idv, face}, nil, []Update{goneNow},
			[]Update{faceGone}, []Update{faceGone}, goneNow, []Update{idv, face, faceGone}},
		{"an end of a status further than this node's keeps the end's", []Update{idv}, nil, []Update{faceExpired},
			[]Update{faceExpired}, []Update{faceExpired}, faceExpired, []Update{idv, faceExpired}},
		{"holding a change numbered alone: a status it moved past is skipped", []Update{idv, face}, []Update{post}, []Update{faceNow},
			nil, nil, faceNow, []Update{idv, face, post}},
		{"holding a change numbered alone: a status further is taken", []Update{idv, face}, []Update{post}, []Update{finishedNow},
			[]Update{finishedNow}, []Update{finishedNow}, finishedNow, []Update{idv, face, post, finishedNow}},
		{"holding nothing alone: the shared copy's later status is taken, though moved past", []Update{idv, face, post}, nil, []Update{faceNow},
			[]Update{faceNow}, []Update{faceNow}, faceNow, []Update{idv, face, post, faceNow}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := logOf(tt.stored, tt.alone)
			recorded, news := l.Merge(tt.changes)
			if !slices.Equal(recorded, tt.recorded) || !slices.Equal(news, tt.news) {
				t.Fatalf("Merge(%v) recorded %v, news %v; want %v, %v", tt.changes, recorded, news, tt.recorded, tt.news)
			}
			if !slices.Equal(l.history, tt.history) {
				t.Fatalf("history = %v, want %v", l.history, tt.history)
			}
			if want := tt.history[len(tt.history)-1]; l.Current() != want {
				t.Fatalf("Current() = %+v, want %+v", l.Current(), want)
			}
			if l.Stored() != tt.wantStored {
				t.Fatalf("Stored() = %+v, want %+v", l.Stored(), tt.wantStored)
			}
		})
	}
}

// TestLogMergeKeepsHistoryLen: a long batch from the shared copy leaves
// the last HistoryLen changes, the newest current.
func TestLogMergeKeepsHistoryLen(t *testing.T) {
	now := time.UnixMilli(1796101200000)
	l := logOf([]Update{changeAt(StatusIDValidationFinished, now)}, nil)
	var changes []Update
	for i := range 20 {
		status := []string{StatusPostProcessingFinished, StatusFaceValidationFinished}[i%2]
		changes = append(changes, changeAt(status, now.Add(time.Duration(i+1)*time.Millisecond)))
	}
	recorded, news := l.Merge(changes)
	if len(recorded) != 20 || len(news) != 20 {
		t.Fatalf("Merge of 20 changes recorded %d, news %d; want 20, 20", len(recorded), len(news))
	}
	if want := changes[20-HistoryLen:]; !slices.Equal(l.history, want) {
		t.Fatalf("history = %v, want the last %d changes %v", l.history, HistoryLen, want)
	}
	if l.Current() != changes[19] || l.Stored() != changes[19] {
		t.Fatalf("Current() = %+v, Stored() = %+v; want both the last change %+v", l.Current(), l.Stored(), changes[19])
	}
}

func TestLogLoad(t *testing.T) {
	now := time.UnixMilli(1796101200000)
	unknown, idv, face := firstChanges(now)

	tests := []struct {
		name           string
		stored         []Update
		load           []Update
		recorded, news []Update
		wantStored     Update
		share          Update // what Reconcile offers; zero: nothing
	}{
		{"an empty shared copy (expired, or a Redis restarted): the stored change forgotten, the current one shared on nothing",
			[]Update{unknown, idv}, nil, nil, nil, Update{}, idv},
		{"a node loads the shared copy: every change news, nothing to share",
			nil, []Update{unknown, idv}, []Update{unknown, idv}, []Update{unknown, idv}, idv, Update{}},
		{"a shared copy behind this node: the current change shared on the copy's tail",
			[]Update{unknown, idv, face}, []Update{unknown, idv}, nil, nil, idv, face},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := logOf(tt.stored, nil)
			recorded, news := l.Load(tt.load)
			if !slices.Equal(recorded, tt.recorded) || !slices.Equal(news, tt.news) {
				t.Fatalf("Load(%v) recorded %v, news %v; want %v, %v", tt.load, recorded, news, tt.recorded, tt.news)
			}
			if l.Stored() != tt.wantStored {
				t.Fatalf("Stored() = %+v, want %+v", l.Stored(), tt.wantStored)
			}
			next, base, ok := l.Reconcile(tt.load, now)
			wantOK, wantBase := tt.share != Update{}, uint64(0)
			if wantOK {
				wantBase = l.Stored().Seq
			}
			if next != tt.share || ok != wantOK || base != wantBase {
				t.Fatalf("Reconcile = %+v on %d, %v; want %+v on %d, %v", next, base, ok, tt.share, wantBase, wantOK)
			}
		})
	}
}

func TestLogReconcile(t *testing.T) {
	now := time.UnixMilli(1796101200000)
	at := func(ms int) time.Time { return now.Add(time.Duration(ms) * time.Millisecond) }
	unknown, idv := changeAt(StatusUnknown, at(-4000)), changeAt(StatusIDValidationFinished, at(-4000))
	faceEarly, face := changeAt(StatusFaceValidationFinished, at(-3000)), changeAt(StatusFaceValidationFinished, at(-1000))
	post, finished := changeAt(StatusPostProcessingFinished, at(-2000)), changeAt(StatusFinished, at(-2000))
	idvLater := changeAt(StatusIDValidationFinished, at(-1000))
	idvExpired := endAt(StatusIDValidationFinished, EndExpired, at(-2000))
	faceExpired := endAt(StatusFaceValidationFinished, EndExpired, at(-2000))

	tests := []struct {
		name          string
		stored, alone []Update
		shared        []Update // the shared copy's history: merged, then passed to Reconcile
		at            time.Time
		want          Update // zero: nothing to share
		base          uint64
	}{
		{"nothing to share before any status", nil, nil, nil, now, Update{}, 0},
		{"nothing to share when every change is stored", []Update{unknown, idv}, nil, nil, now, Update{}, 0},
		{"a change numbered alone keeps its id over an older stored one", []Update{idv}, []Update{face}, nil, now, face, idv.Seq},
		{"an end numbered alone keeps its id", []Update{faceEarly}, []Update{endAt(StatusFaceValidationFinished, EndNotFound, at(-1000))}, nil, now,
			endAt(StatusFaceValidationFinished, EndNotFound, at(-1000)), faceEarly.Seq},
		{"a stored end wins and keeps this node's later status", []Update{idv}, []Update{face}, []Update{idvExpired}, now,
			endAt(StatusFaceValidationFinished, EndExpired, now), idvExpired.Seq},
		{"a stored end keeps its status when further than this node's", []Update{unknown}, []Update{idvLater}, []Update{faceExpired}, now,
			endAt(StatusFaceValidationFinished, EndExpired, now), faceExpired.Seq},
		{"a stored status that advances the flow wins, numbered above both", []Update{idv}, []Update{face}, []Update{finished}, now,
			changeAt(StatusFinished, now), finished.Seq},
		{"a stored status that advances the flow wins, numbered above both by a clock behind", []Update{idv}, []Update{face}, []Update{finished}, at(-60000),
			changeAt(StatusFinished, at(-999)), finished.Seq},
		{"a stored status the cluster showed after this node's wins", []Update{idv}, []Update{face}, []Update{idv, faceEarly, post}, now,
			Update{InterviewID: "a", Status: StatusPostProcessingFinished, Seq: idThrough(now, 4+12*2)}, post.Seq},
		{"a stored status in no order with this node's, not shown after it: this node's keeps its id", []Update{idv}, []Update{face}, []Update{post}, now,
			face, post.Seq},
		{"this node's status wins over a later stored one that would move it back", []Update{unknown}, []Update{faceEarly}, []Update{idvLater}, now,
			changeAt(StatusFaceValidationFinished, now), idvLater.Seq},
		{"this node's status wins over a later stored one, numbered above it by a clock behind", []Update{unknown}, []Update{faceEarly}, []Update{idvLater}, at(-60000),
			changeAt(StatusFaceValidationFinished, at(-999)), idvLater.Seq},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := logOf(tt.stored, tt.alone)
			l.Merge(tt.shared)
			cur, stored := l.Current(), l.Stored()
			next, base, ok := l.Reconcile(tt.shared, tt.at)
			if wantOK := tt.want != (Update{}); ok != wantOK || next != tt.want || base != tt.base {
				t.Fatalf("Reconcile = %+v on %d, %v; want %+v on %d, %v", next, base, ok, tt.want, tt.base, wantOK)
			}
			if ok && base != stored.Seq {
				t.Fatalf("Reconcile shares on %d, want on the stored change %d", base, stored.Seq)
			}
			if ok && next.Seq != cur.Seq && (next.Seq <= cur.Seq || next.Seq <= stored.Seq) {
				t.Fatalf("Reconcile renumbered to %d, not above this node's %d and the stored %d", next.Seq, cur.Seq, stored.Seq)
			}
			if l.Current() != cur || l.Stored() != stored {
				t.Fatalf("Reconcile changed the log: %+v, %+v; once stored, the change goes to Merge", l.Current(), l.Stored())
			}
		})
	}
}
