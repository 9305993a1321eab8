package relay

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// This file makes events: from the webhooks the handler takes, and the
// changes the poller commits, into deliveries in the queue.

// Accepted relays a webhook the upstream sent and pushgate took, with its
// body byte for byte, to every target. It never blocks for long: the
// answer to the upstream waits for it.
func (r *Relay) Accepted(interviewID string, body []byte) {
	var w struct {
		ExternalID any `json:"externalId"`
	}
	if json.Unmarshal(body, &w) == nil {
		switch v := w.ExternalID.(type) {
		case string:
			r.Remember(interviewID, v)
		case float64:
			r.Remember(interviewID, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	if !r.kinds[KindUpstream] {
		return
	}
	r.add(r.fanOut(Delivery{ID: newID(), InterviewID: interviewID, Kind: KindUpstream, Body: body, Created: time.Now()}))
}

// ExternalIDs is an optional interface of a Queue that nodes share: it
// keeps the interviews' external ids where every node reads them, for as
// long as it keeps an interview (its retention).
type ExternalIDs interface {
	RememberExternalID(ctx context.Context, interviewID, externalID string) error
	ExternalID(ctx context.Context, interviewID string) (string, error)
}

// Remember records the interview's id in the integrator's own systems
// (externalCustomerId), which session events then carry.
func (r *Relay) Remember(interviewID, externalID string) {
	if externalID == "" {
		return
	}
	if ids, ok := r.queue.(ExternalIDs); ok && (r.kinds[KindStatus] || r.kinds[KindEnded]) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = ids.RememberExternalID(ctx, interviewID, externalID) // out of reach: this node still has it
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.external[interviewID]; !ok && len(r.external) >= maxExternal {
		for k := range r.external { // forget one, whichever
			delete(r.external, k)
			break
		}
	}
	r.external[interviewID] = externalID
}

// externalID is the interview's external id, "" when unknown: from this
// node's memory, else from the queue the nodes share.
func (r *Relay) externalID(interviewID string) string {
	r.mu.Lock()
	ext := r.external[interviewID]
	r.mu.Unlock()
	if ids, ok := r.queue.(ExternalIDs); ok && ext == "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ext, _ = ids.ExternalID(ctx, interviewID) // out of reach: unknown
	}
	return ext
}

// Observed is the poller's Observer: it turns a change this node committed
// into session.status and, at the end of the session, session.ended. It
// runs while the poller holds the interview, so the events of one
// interview are queued in the order of its changes.
func (r *Relay) Observed(prev, next flow.Update) {
	if !r.kinds[KindStatus] && !r.kinds[KindEnded] {
		return
	}
	now := time.Now()
	ext := r.externalID(next.InterviewID)
	var ds []Delivery
	if next.End == "" && r.kinds[KindStatus] {
		ds = append(ds, r.fanOut(Delivery{
			ID: stableID(next.InterviewID, "status", strconv.FormatUint(next.Seq, 10)), InterviewID: next.InterviewID, Kind: KindStatus,
			Body: statusJSON(next.InterviewID, next.Status, next.Seq, ext, now), Created: now,
		})...)
	}
	if next.Done() && !prev.Done() && r.kinds[KindEnded] {
		end := End{Reason: reasonOf(next), Status: next.Status, ExternalID: ext}
		d := Delivery{ID: stableID(next.InterviewID, "ended"), InterviewID: next.InterviewID, Kind: KindEnded, End: &end, Created: now}
		if end.Reason != ReasonFinished {
			d.Body = endedJSON(next.InterviewID, end, "", now)
		}
		ds = append(ds, r.fanOut(d)...)
	}
	r.add(ds)
}

// reasonOf is why a session ended.
func reasonOf(u flow.Update) string {
	switch u.End {
	case "":
		return ReasonFinished
	case flow.EndNotFound:
		return ReasonNotFound
	}
	return ReasonExpired
}

// fanOut makes a delivery of the event d to every target.
func (r *Relay) fanOut(d Delivery) []Delivery {
	out := make([]Delivery, len(r.cfg.URLs))
	for i, u := range r.cfg.URLs {
		out[i] = d
		out[i].Target = u
	}
	return out
}

// add queues ds. While events wait in memory (the queue was out of
// reach), ds waits behind them. Otherwise it goes to the queue before add
// returns (on disk, with -relay-dir: before the webhook is answered), one
// add at a time, so that the events of an interview reach the queue in the
// order they were made; what the queue cannot take now waits in memory,
// up to maxSpill, and a full queue drops it, counted and logged.
func (r *Relay) add(ds []Delivery) {
	if len(ds) == 0 || r.spillBehind(ds) {
		return
	}
	r.addMu.Lock()
	defer r.addMu.Unlock()
	if r.spillBehind(ds) { // events went to memory while this add waited
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := r.queue.Add(ctx, ds)
	cancel()
	switch {
	case err == nil:
		r.metrics.count(ds, "queued")
		r.poke()
	case errors.Is(err, ErrFull):
		r.dropped(ds, "the relay queue is full")
	default:
		r.cfg.Logger.Warn("relay: the queue is out of reach; events wait in this node's memory until it is back", "err", err)
		r.qmu.Lock()
		kept := r.spillLocked(ds)
		r.qmu.Unlock()
		if !kept {
			r.dropped(ds, tooManyInMemory)
		}
	}
}

const tooManyInMemory = "the relay queue stayed out of reach, and the events waiting in memory reached their cap"

// spillBehind puts ds behind the events waiting in memory, when there are
// some, and reports whether it did.
func (r *Relay) spillBehind(ds []Delivery) bool {
	r.qmu.Lock()
	if len(r.spill) == 0 {
		r.qmu.Unlock()
		return false
	}
	kept := r.spillLocked(ds)
	r.qmu.Unlock()
	if !kept {
		r.dropped(ds, tooManyInMemory)
	}
	return true
}

// spillLocked keeps ds in memory until the queue is back, and reports
// whether there was room.
func (r *Relay) spillLocked(ds []Delivery) bool {
	if len(r.spill)+len(ds) > maxSpill {
		return false
	}
	r.spill = append(r.spill, ds...)
	return true
}

// spillChunk is how many waiting events one Add takes when the queue is
// back: a large spill goes in steps, each well within the call's time.
const spillChunk = 200

// unspill moves the events waiting in memory into the queue, oldest first,
// once it is back. The dispatcher calls it, and Close: never two at once.
// An event leaves the memory only once the queue took it, so an add meanwhile
// waits behind it.
func (r *Relay) unspill() {
	for moved := 0; ; {
		r.qmu.Lock()
		chunk := slices.Clone(r.spill[:min(len(r.spill), spillChunk)])
		r.qmu.Unlock()
		if len(chunk) == 0 {
			if moved > 0 {
				r.cfg.Logger.Info("relay: the queue is back; the events that waited in memory are queued", "events", moved)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := r.queue.Add(ctx, chunk)
		cancel()
		if err != nil && !errors.Is(err, ErrFull) {
			return // still out of reach
		}
		r.qmu.Lock()
		r.spill = slices.Delete(r.spill, 0, len(chunk))
		r.qmu.Unlock()
		if err != nil {
			r.dropped(chunk, "the relay queue is full")
			continue
		}
		moved += len(chunk)
		r.metrics.count(chunk, "queued")
		r.poke()
	}
}

// waitingInMemory is how many events wait in memory for the queue.
func (r *Relay) waitingInMemory() int {
	r.qmu.Lock()
	defer r.qmu.Unlock()
	return len(r.spill)
}

// dropped counts events that will never be delivered, and logs it (at
// most once a minute).
func (r *Relay) dropped(ds []Delivery, why string) {
	r.metrics.count(ds, "dropped")
	r.mu.Lock()
	log := time.Since(r.droppedAt) > time.Minute
	if log {
		r.droppedAt = time.Now()
	}
	r.mu.Unlock()
	if log {
		r.cfg.Logger.Error("relay: events dropped: "+why+"; see pushgate_relay_events_total{outcome=\"dropped\"}", "events", len(ds))
	}
}

// poke wakes the dispatcher: a delivery may be due now.
func (r *Relay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}
