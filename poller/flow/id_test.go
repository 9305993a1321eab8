package flow

import "testing"

func TestGate(t *testing.T) {
	const t0 = 1796101200000
	id := func(stamp uint64, status string) uint64 { return renumber(stamp, Update{Status: status}) }
	ended := func(stamp uint64, end string) uint64 { return renumber(stamp, Update{End: end}) }
	for _, tc := range []struct {
		name      string
		held, seq uint64
		send      uint64 // 0: not sent
	}{
		{"a first connect takes everything", 0, id(t0, StatusUnknown), id(t0, StatusUnknown)},
		{"a later change", id(t0, StatusUnknown), id(t0+5, StatusIDValidationFinished), id(t0+5, StatusIDValidationFinished)},
		{"the same status, numbered apart", id(t0, StatusFaceValidationFinished), id(t0+5, StatusFaceValidationFinished), 0},
		{"a status behind, numbered later", id(t0, StatusFaceValidationFinished), id(t0+5, StatusIDValidationFinished), 0},
		{"a change the client's path went through", t0*1000 + 5 + 12*2, id(t0+5, StatusPostProcessingFinished), 0}, // FACE, through POST
		{"a change in no order with the client's, its path never through it", id(t0+5, StatusFaceValidationFinished), id(t0, StatusPostProcessingFinished), (t0+6)*1000 + 4 + 12*2},
		{"the end, numbered below", id(t0+2000, StatusFaceValidationFinished), id(t0, StatusFinished), id(t0+2001, StatusFinished)},
		{"an ended session, numbered below", id(t0+2000, StatusFaceValidationFinished), ended(t0, EndExpired), ended(t0+2001, EndExpired)},
		{"the end the client shows", id(t0+2000, StatusFinished), id(t0, StatusFinished), 0},
		{"a review's outcome after the end, numbered below", id(t0+2000, StatusFinished), id(t0, StatusManualReviewApproved), id(t0+2001, StatusManualReviewApproved)},
		{"an older gateway's id: by number", 42, 41, 0},
	} {
		send, ok := Gate(tc.held, tc.seq)
		if !ok {
			send = 0
		}
		if send != tc.send {
			t.Errorf("%s: Gate(%d, %d) = %d, want %d", tc.name, tc.held, tc.seq, send, tc.send)
		}
	}
}

// TestPaths: every path writes to one view and reads back from it; the
// views of middle statuses through others lie between the plain and the
// hashed ones, each once.
func TestPaths(t *testing.T) {
	seen := map[uint64]path{}
	for status := uint64(1); status <= viewOtherEnd; status++ {
		for shown := range uint8(16) {
			p := path{status: status, shown: shown &^ bit(status)}
			if !isMiddle(status) {
				p.shown = 0
			}
			v := p.view()
			if got := pathOf(v); got != p {
				t.Fatalf("%+v wrote %d, read back as %+v", p, v, got)
			}
			if other, dup := seen[v]; dup && other != p {
				t.Fatalf("%+v and %+v both write %d", p, other, v)
			}
			seen[v] = p
			if v == 0 || (v > viewOtherEnd && (!isMiddle(status) || v >= viewHashedFirst)) {
				t.Fatalf("%+v wrote %d, out of its range", p, v)
			}
		}
	}
	face := path{status: 5}.then(4) // FACE, then POST: POST through FACE
	if face.status != 4 || !face.passed(5) || face.passed(6) || !face.passed(2) || face.passed(7) {
		t.Fatalf("POST through FACE: %+v", face)
	}
	if p := face.then(7); p.shown != 0 || !p.passed(4) || !p.passed(5) {
		t.Fatalf("ONBOARDING_FINISHED after it: %+v, want a plain path past every check", p)
	}
}
