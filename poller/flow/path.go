package flow

// A client's path. An event id's view names the status its change shows
// (see viewOf). For the checks the upstream finishes in no fixed order (a
// second ID, post-processing, the face check, government validation: the
// middle views 3 to 6), the view also names which of the other three the
// path to that status went through:
//
//	view = status + 12*others
//
// where others has a bit per other middle view, ascending, and is 1 to 7:
// views 15 to 90, between the plain views (1 to 12, a path through none
// of the others) and the hashed ones (100 to 999). Any node then tells
// whether a change is news to the client holding an id by what the id
// says, not by comparing stamps, which nodes whose clocks disagree
// (numbering alone while their cluster is out of reach) cannot do. The
// ids of a gateway before this scheme carry plain views: paths through
// none of the others.

// middleViews are the views of the checks the upstream finishes in no
// fixed order, ascending.
var middleViews = [...]uint64{3, 4, 5, 6}

// othersStep separates the others of a view from its status.
const othersStep = 12

// path is what a client holding an id has been shown: the status it shows
// (a plain view) and the middle statuses shown before it.
type path struct {
	status uint64
	shown  uint8 // bit v-3: middle view v was shown before status
}

func isMiddle(v uint64) bool { return v >= middleViews[0] && v <= middleViews[len(middleViews)-1] }

// bit is the bit of middle view v in path.shown.
func bit(v uint64) uint8 {
	if !isMiddle(v) {
		return 0
	}
	return 1 << (v - middleViews[0])
}

// pathOf reads a view.
func pathOf(v uint64) path {
	if v <= viewOtherEnd || v >= viewHashedFirst {
		return path{status: v}
	}
	p := path{status: v % othersStep}
	others, j := v/othersStep, 0
	for _, o := range middleViews {
		if o == p.status {
			continue
		}
		if others&(1<<j) != 0 {
			p.shown |= bit(o)
		}
		j++
	}
	return p
}

// view writes p as a view.
func (p path) view() uint64 {
	if !isMiddle(p.status) {
		return p.status
	}
	var others uint64
	j := 0
	for _, o := range middleViews {
		if o == p.status {
			continue
		}
		if p.shown&bit(o) != 0 {
			others |= 1 << j
		}
		j++
	}
	return p.status + othersStep*others
}

// passed reports whether a client on p has the status of plain view x, or
// is past it: x is the status it shows, a middle status it went through,
// or a status behind its own in the flow (see compareViews).
func (p path) passed(x uint64) bool {
	return x == p.status || p.shown&bit(x) != 0 || (p.status != 0 && compareViews(p.status, x) > 0)
}

// then is the path of a client on p once shown the change whose view is
// v: its status, through everything p and v's own path went through.
func (p path) then(v uint64) path {
	next := pathOf(v)
	next.shown |= p.shown | bit(p.status)
	next.shown &^= bit(next.status)
	if !isMiddle(next.status) {
		next.shown = 0 // only a middle status tells its others
	}
	return next
}

// statusIn is the plain view of the status the id seq shows; 0 for an id
// with no view.
func statusIn(seq uint64) uint64 { return pathOf(viewIn(seq)).status }

// toClient is the id under which a client holding the id held gets a
// change numbered seq, with view v, which is news to it: numbered above
// held (just above, when seq is not), with the view of the client's path
// through it.
func toClient(held, seq, v uint64) uint64 {
	stamp := seq / viewSpan
	if seq <= held {
		stamp = held/viewSpan + 1
	}
	return stamp*viewSpan + pathOf(viewIn(held)).then(v).view()
}

// forClient is what a client holding the id last (0: none) gets of the
// changes us, oldest first: those that are news to it (see path.passed),
// each under its id for that client (see toClient).
func forClient(last uint64, us []Update) []Update {
	var out []Update
	for _, u := range us {
		v := viewIn(u.Seq)
		if v == 0 {
			v = viewOf(u) // numbered by a gateway before ids carried views
		}
		if pathOf(viewIn(last)).passed(pathOf(v).status) {
			continue
		}
		u.Seq = toClient(last, u.Seq, v)
		out = append(out, u)
		last = u.Seq
	}
	return out
}
