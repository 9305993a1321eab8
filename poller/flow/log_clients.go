package flow

import (
	"slices"
	"time"
)

// This file holds what a Log tells a client: what it missed (Since) and
// whether a change published while its stream is open is news (Gate).

// Since returns what a client holding the event id last must get, oldest
// first, so that it never gets an id at or below last, a status it shows,
// a middle status its path went through, or a status behind the one it
// shows (see forClient and path):
//   - last 0 (a first connect): every remembered change;
//   - last one of the remembered ids: the changes after it;
//   - any other id (numbered by another node while their cluster was out
//     of reach, by this node before the change left its memory, by
//     another gateway lifetime, or for this client alone, see toClient)
//     whose status this log remembers: the changes after the last change
//     with that status here;
//   - any other id: the current status, when it is news to that client
//     and comes after its status in the flow (see compareViews); of two
//     statuses the upstream sends in no fixed order, this node cannot
//     tell which came first, as it never saw the client's.
//
// Each is numbered above last, with the view of the client's path. The
// ids a client brings, and those it gets, raise the floor the next change
// is numbered above, up to floorAhead past now: a node whose clock is
// behind another's, numbering alone while their cluster is out of reach,
// thus numbers above the ids its clients bring from the other node, and
// they get its changes.
func (l *Log) Since(last uint64, now time.Time) []Update {
	out := l.since(last)
	ceiling := uint64(now.Add(floorAhead).UnixMilli())
	if last >= stampedFrom {
		l.floor = max(l.floor, min(last/viewSpan, ceiling))
	}
	if n := len(out); n > 0 {
		l.floor = max(l.floor, min(out[n-1].Seq/viewSpan, ceiling))
	}
	return out
}

func (l *Log) since(last uint64) []Update {
	h := l.history
	if last == 0 || len(h) == 0 {
		return forClient(0, h)
	}
	if i := slices.IndexFunc(h, func(u Update) bool { return u.Seq == last }); i >= 0 {
		return forClient(last, h[i+1:])
	}
	held := statusIn(last)
	if i := l.showed(held); i >= 0 {
		return forClient(last, h[i+1:])
	}
	cur := h[len(h)-1]
	if held != 0 && compareViews(viewOf(cur), held) <= 0 {
		return nil // the order of the two is not known here
	}
	return forClient(last, []Update{cur})
}

// showed is the index in the history of the last change showing the
// status of plain view v; -1 when none does.
func (l *Log) showed(v uint64) int {
	for i := len(l.history) - 1; i >= 0 && v != 0; i-- {
		if viewOf(l.history[i]) == v {
			return i
		}
	}
	return -1
}

// Gate is the package's Gate for a change this log recorded: a change the
// client's path does not show, of a status the upstream sends in no fixed
// order with the client's, is news only when this log showed the client's
// status before it; otherwise this node cannot tell which came first, or
// knows it came before.
func (l *Log) Gate(held, seq uint64) (uint64, bool) {
	send, ok := Gate(held, seq)
	if !ok || viewIn(held) == 0 || viewIn(seq) == 0 || compareViews(statusIn(seq), statusIn(held)) > 0 {
		return send, ok
	}
	// showed: the last change showing the client's status; at: the
	// change seq. A batch (a merge, a reload) is recorded whole before it
	// is published: the change may be in the history before the client's
	// status, and is then behind it.
	v, showed, at := statusIn(held), -1, -1
	for i, u := range l.history {
		if viewOf(u) == v {
			showed = i
		}
		if at < 0 && u.Seq == seq {
			at = i
		}
	}
	return send, showed >= 0 && (at < 0 || at >= showed)
}
