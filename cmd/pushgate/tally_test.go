package main

// The tally of the chaos and shutdown storm tests: the changes the test
// made, and what every tab saw of them.

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// changeLog records the statuses the test set in the simulator, per
// interview, in order, starting with the flow's first.
type changeLog struct {
	flow []string
	mu   sync.Mutex             // protects step and at
	step map[string]int         // interview -> index in flow of its status
	at   map[string][]time.Time // interview -> when each status of flow was set
}

func newChangeLog(flow []string, sessions []session) *changeLog {
	l := &changeLog{flow: flow, step: map[string]int{}, at: map[string][]time.Time{}}
	for _, s := range sessions {
		l.at[s.InterviewID] = []time.Time{{}} // the first status, from the start
	}
	return l
}

// advance sets the next status of the flow of each interview not finished
// yet in the simulator.
func (l *changeLog) advance(c *cluster, ids []string) error {
	for _, id := range ids {
		l.mu.Lock()
		k := l.step[id] + 1
		l.mu.Unlock()
		if k >= len(l.flow) {
			continue
		}
		resp, err := c.client.Post(c.sim+"/sim/interviews/"+id+"/status", "application/json",
			strings.NewReader(`{"onboardingStatus":"`+l.flow[k]+`"}`))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("simulator control: %s", resp.Status)
		}
		l.mu.Lock()
		l.step[id] = k
		l.at[id] = append(l.at[id], time.Now())
		l.mu.Unlock()
	}
	return nil
}

// steps is each interview's index in the flow now.
func (l *changeLog) steps() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.step)
}

// window is a span of time around a fault; a change made in it may be
// missed, the next status arriving instead.
type window struct {
	name     string
	from, to time.Time
}

func inWindow(ws []window, at time.Time) bool {
	return slices.ContainsFunc(ws, func(w window) bool { return !at.Before(w.from) && !at.After(w.to) })
}

// flowTally is what every tab saw, against the changes made.
type flowTally struct {
	tabs, events, conns int
	anomalies
	unfinished     int // tabs that never got the flow's last status
	skippedFault   int // statuses missed, changed within a fault window
	skippedOffline int // statuses missed, changed while the tab had no stream
	// byPhase counts the anomalies by the last fault begun before them
	// (when the event arrived, or the missed status was set).
	byPhase map[string]*anomalies
	bad     []string // the first offenders, for the failure message
}

type anomalies struct {
	dups        int // a status delivered again
	reorders    int // an id at or below the last one the tab held
	regressions int // a status earlier in the flow than one delivered
	lost        int // a status set outside the fault windows, never delivered
}

func (a anomalies) String() string {
	return fmt.Sprintf("%d duplicates, %d reorders, %d regressions, %d lost", a.dups, a.reorders, a.regressions, a.lost)
}

func (f flowTally) String() string {
	var phases []string
	for _, name := range slices.Sorted(maps.Keys(f.byPhase)) {
		phases = append(phases, fmt.Sprintf("%s: %v", name, *f.byPhase[name]))
	}
	if len(phases) == 0 {
		phases = []string{"none"}
	}
	return fmt.Sprintf("%d tabs, %d events, %d connections: %v, %d unfinished, skipped %d in fault windows and %d while reconnecting (anomalies by phase: %s)",
		f.tabs, f.events, f.conns, f.anomalies, f.unfinished, f.skippedFault, f.skippedOffline, strings.Join(phases, "; "))
}

// phase counts one anomaly against the last phase begun at t.
func (f *flowTally) phase(phases []window, t time.Time, count func(*anomalies)) {
	name := "0 before any fault"
	for k, p := range phases {
		if !t.Before(p.from) {
			name = fmt.Sprintf("%d after %s", k+1, p.name)
		}
	}
	if f.byPhase[name] == nil {
		f.byPhase[name] = &anomalies{}
	}
	count(f.byPhase[name])
	count(&f.anomalies)
}

func (f *flowTally) offend(format string, args ...any) {
	if len(f.bad) < 12 {
		f.bad = append(f.bad, fmt.Sprintf(format, args...))
	}
}

// tally checks each tab's events across all its connections: no status
// twice, ids rising, statuses never going back along the flow, the flow's
// last status reached, and each status set after the tab first opened its
// stream delivered, unless it was set within one of windows or while the
// tab had no stream (then counted as skipped). phases are the faults, in
// order, that the anomalies are counted by.
func tally(tabs []*tab, l *changeLog, windows, phases []window) flowTally {
	f := flowTally{tabs: len(tabs), byPhase: map[string]*anomalies{}}
	rank := map[string]int{}
	for k, s := range l.flow {
		rank[s] = k
	}
	for n, tb := range tabs {
		events, conns := tb.record()
		f.events += len(events)
		f.conns += len(conns)
		var held uint64
		top := -1
		seen := map[string]bool{}
		for _, ev := range events {
			k, known := rank[ev.Status]
			cn := conns[ev.conn]
			switch {
			case seen[ev.Status]:
				f.phase(phases, ev.at, func(a *anomalies) { a.dups++ })
				f.offend("tab %d (%s): %s again, id %d, on connection %d to node %d", n, tb.s.InterviewID, ev.Status, ev.Seq, ev.conn, cn.node)
			case !known || k < top:
				f.phase(phases, ev.at, func(a *anomalies) { a.regressions++ })
				f.offend("tab %d (%s): %s (id %d) after %s", n, tb.s.InterviewID, ev.Status, ev.Seq, l.flow[max(top, 0)])
			}
			if ev.Seq <= held {
				f.phase(phases, ev.at, func(a *anomalies) { a.reorders++ })
				f.offend("tab %d (%s): id %d (%s) at or below %d, on connection %d to node %d (Last-Event-ID %d)",
					n, tb.s.InterviewID, ev.Seq, ev.Status, held, ev.conn, cn.node, cn.lastID)
			}
			held, top, seen[ev.Status] = ev.Seq, max(top, k), true
		}
		if len(events) == 0 || !events[len(events)-1].Finished() {
			f.unfinished++
			f.offend("tab %d (%s): ended at %v", n, tb.s.InterviewID, tb.last())
		}
		f.skipped(n, tb, events, conns, l, windows, phases, seen)
	}
	return f
}

// skipped counts the statuses a tab should have got and did not.
func (f *flowTally) skipped(n int, tb *tab, events []tabEvent, conns []tabConn, l *changeLog, windows, phases []window, seen map[string]bool) {
	if len(events) == 0 {
		return
	}
	first := conns[events[0].conn].open
	l.mu.Lock()
	at := slices.Clone(l.at[tb.s.InterviewID])
	l.mu.Unlock()
	for k, t := range at {
		if seen[l.flow[k]] || (k+1 < len(at) && !at[k+1].After(first)) {
			continue // delivered, or over before the tab came
		}
		t = later(t, first)
		switch {
		case inWindow(windows, t):
			f.skippedFault++
		case !streaming(conns, t):
			f.skippedOffline++
		default:
			f.phase(phases, t, func(a *anomalies) { a.lost++ })
			f.offend("tab %d (%s): never got %s, set at %s", n, tb.s.InterviewID, l.flow[k], t.Format("15:04:05.000"))
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// streaming reports whether one of conns had its stream open at t.
func streaming(conns []tabConn, t time.Time) bool {
	return slices.ContainsFunc(conns, func(cn tabConn) bool {
		return !cn.open.IsZero() && !t.Before(cn.open) && (cn.ended.IsZero() || t.Before(cn.ended))
	})
}

// recovery is how long after since every tab held its interview's status
// of want (a flow index) or a later one: zero for a tab that already did;
// ok is false when a tab never did.
func recovery(tabs []*tab, l *changeLog, want map[string]int, since time.Time) (worst time.Duration, ok bool) {
	rank := map[string]int{}
	for k, s := range l.flow {
		rank[s] = k
	}
	for _, tb := range tabs {
		events, _ := tb.record()
		i := slices.IndexFunc(events, func(ev tabEvent) bool { return rank[ev.Status] >= want[tb.s.InterviewID] })
		if i < 0 {
			return 0, false
		}
		worst = max(worst, events[i].at.Sub(since))
	}
	return worst, true
}
