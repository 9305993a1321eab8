package flow

import (
	"cmp"
	"slices"
	"time"
)

// HistoryLen is how many changes of an interview a Log remembers, as does
// a cluster's shared copy. A flow has a handful of statuses, so a
// reconnecting client catches up on every change it missed, not only the
// latest.
const HistoryLen = 16

// Log is the status log of one interview on one node: its current status,
// the changes before it, the last change known stored in the cluster's
// shared copy, and the floor its next ids are numbered above. It decides
// what changes the interview, numbers each change, tells every client what
// it has not seen (Since, Gate), and brings the node and the shared copy
// back together (Merge, Load, Reconcile). A node alone runs the same code:
// its shared copy stores every change at once.
//
// A Log takes no lock and starts no goroutine: its owner serializes the
// calls. Methods that number a change take the time from the caller (a
// node passes Now).
type Log struct {
	id      string
	cur     Update   // the current status; Seq 0: none yet
	history []Update // the last HistoryLen changes, oldest first, ending with cur
	stored  Update   // the last change known stored in the shared copy; Seq 0: none
	floor   uint64   // the highest stamp of an id a client presented or got here
}

// NewLog returns the empty log of an interview.
func NewLog(interviewID string) Log { return Log{id: interviewID} }

// Current returns the current status; its Seq is 0 while none is known.
func (l *Log) Current() Update { return l.cur }

// Stored returns the last change known stored in the shared copy.
func (l *Log) Stored() Update { return l.stored }

// Next decides whether status, or the end of the session (end not ""),
// changes the interview and, if so, numbers the change at now: above the
// current change, the stored one, and every id a client brought (see
// Since). overtaken says a change made elsewhere (a push, another node)
// came after the read that brought status began: that read may be older
// than the change, so it counts only when it takes the flow further. A
// status the interview moved past (see movedPast) never comes back,
// whoever brings it: a webhook the upstream retried late, or a read that
// lags behind a webhook.
func (l *Log) Next(status, end string, overtaken bool, now time.Time) (Update, bool) {
	if !l.changes(status, end, overtaken) {
		return l.cur, false
	}
	next := Update{InterviewID: l.id, Status: status, End: end}
	if end != "" {
		next.Status = l.cur.Status // the last status seen stays
	}
	next.Seq = nextID(max(l.cur.Seq, l.stored.Seq, l.floor*viewSpan), l.cur.Seq, next, now)
	return next, true
}

func (l *Log) changes(status, end string, overtaken bool) bool {
	switch {
	case l.cur.End != "":
		return false // an ended session never changes again
	case end != "":
		return !l.cur.Finished() // a finished flow never expires: its score stays readable
	case l.cur.Seq == 0:
		return true
	case l.cur.Status == status || l.movedPast(status):
		return false
	case overtaken:
		return advances(l.cur.Status, status)
	}
	return true
}

// Append records u, a change Next numbered, as the current status; stored
// says the shared copy stored it, else this node numbered it alone (the
// shared copy out of reach) and Reconcile shares it later.
func (l *Log) Append(u Update, stored bool) {
	if stored {
		l.stored = u
	}
	l.record(u)
}

func (l *Log) record(u Update) {
	l.cur = u
	if len(l.history) == HistoryLen {
		l.history = append(l.history[:0], l.history[1:]...)
	}
	l.history = append(l.history, u)
}

// Merge takes changes stored elsewhere (by another node, or before this
// node loaded the interview), oldest first. It returns those it recorded
// and, of them, those that are news to subscribers: a change that only
// renumbers the current status is recorded but not news, so subscribers
// never get one status twice in a row. It skips a change at or below the
// current one, an unended change after an ended one, and, while this
// node holds a change it numbered alone, a status it moved past (see
// Reconcile for how the two are brought together). An end keeps the later
// of the two statuses.
func (l *Log) Merge(changes []Update) (recorded, news []Update) {
	alone := l.cur.Seq != l.stored.Seq
	for _, u := range changes {
		u.InterviewID = l.id
		l.stored = u // the stored tail, even when older than this node thought (a Redis rolled back)
		if u.Seq <= l.cur.Seq || (alone && u.End == "" && l.movedPast(u.Status)) || (l.cur.End != "" && u.End == "") {
			continue
		}
		if u.End != "" {
			u.Status = l.laterStatus(u.Status)
		}
		same := u.Status == l.cur.Status && u.End == l.cur.End
		l.record(u)
		recorded = append(recorded, u)
		if !same {
			news = append(news, u)
		}
	}
	return recorded, news
}

// Load takes the shared copy as loaded (history, oldest first): nothing
// stored when it is empty (the copy expired, or its Redis restarted
// empty), else merged (see Merge).
func (l *Log) Load(history []Update) (recorded, news []Update) {
	if len(history) == 0 {
		l.stored = Update{}
	}
	return l.Merge(history)
}

// Follows reports whether a change stored on top of the change prev comes
// right after what this node has: prev is the last change known stored,
// and this node numbered nothing alone since.
func (l *Log) Follows(prev uint64) bool { return prev == l.stored.Seq && l.cur.Seq == l.stored.Seq }

// Reconcile returns the change that shares what this node saw alone (while
// the shared copy was out of reach), to be stored on top of the stored
// change base; ok false when there is nothing to share. history is the
// shared copy sync loaded (nil when none was). This node's latest change
// keeps its id, so clients that got it hold an id every node knows once it
// is stored; the shared copy's later changes were merged before this, so
// the later observation wins. Exceptions, numbered above both at now: a
// stored status that takes the flow further (see FlowOrder), or that the
// cluster showed after this node's status (in history), wins over this
// node's; so does a stored end, which keeps the later of the two
// statuses. This node's status wins over a later stored one that would
// move it back. Once stored, the change goes to Shared.
func (l *Log) Reconcile(history []Update, now time.Time) (next Update, base uint64, ok bool) {
	cur, stored := l.cur, l.stored
	if cur.Seq == 0 || cur.Seq == stored.Seq {
		return Update{}, 0, false
	}
	next, above := cur, max(cur.Seq, stored.Seq, l.floor*viewSpan)
	switch {
	case stored.Seq > 0 && stored.End != "" && cur.End == "":
		next = Update{InterviewID: l.id, Status: l.laterStatus(stored.Status), End: stored.End}
		next.Seq = nextID(above, cur.Seq, next, now)
	case stored.Seq > 0 && (advances(cur.Status, stored.Status) || showedAfter(history, cur.Status, stored.Status)):
		next = Update{InterviewID: l.id, Status: stored.Status, End: cmp.Or(stored.End, cur.End)}
		next.Seq = nextID(above, cur.Seq, next, now)
	case stored.Seq > cur.Seq:
		next.Seq = nextID(max(stored.Seq, l.floor*viewSpan), cur.Seq, next, now)
	}
	return next, stored.Seq, true
}

// Shared takes u, just stored in the shared copy as its latest change
// (see Reconcile), as Merge takes changes stored elsewhere.
func (l *Log) Shared(u Update) (recorded, news []Update) {
	l.stored = u
	return l.Merge([]Update{u})
}

// showedAfter reports whether history shows status later than was, an
// unended status other than it: the cluster moved past was.
func showedAfter(history []Update, was, status string) bool {
	if was == status {
		return false
	}
	seen := false
	for _, u := range history {
		switch {
		case u.End != "":
		case u.Status == was:
			seen = true
		case u.Status == status && seen:
			return true
		}
	}
	return false
}

// movedPast reports whether the interview has moved past status: status
// is behind the current one in the flow (see FlowOrder), or the interview
// showed it before the current status. The upstream sends the checks
// between the first ID check and the end of the flow in no fixed order, so
// their order is learnt from the interview's own history.
func (l *Log) movedPast(status string) bool {
	if status == l.cur.Status {
		return false
	}
	return regresses(l.cur.Status, status) ||
		slices.ContainsFunc(l.history, func(u Update) bool { return u.Status == status && u.End == "" })
}

// laterStatus is status, or the current status when the interview moved
// past status or status is none (an end numbered where no status was
// known yet): the status an end committed elsewhere keeps.
func (l *Log) laterStatus(status string) string {
	if l.cur.Seq > 0 && l.cur.End == "" && (status == "" || l.movedPast(status)) {
		return l.cur.Status
	}
	return status
}
