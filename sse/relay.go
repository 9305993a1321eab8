package sse

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/pushgate/pushgate/relay"
)

// Relay forwards to the integrator's backend what the upstream's webhooks
// bring (see package relay): the handler hands it every webhook it takes,
// and the external ids sessions start with; the server API lists and
// redelivers what failed. *relay.Relay is one.
type Relay interface {
	Accepted(interviewID string, body []byte)
	Remember(interviewID, externalID string)
	Failed(ctx context.Context, limit int) ([]relay.Delivery, error)
	Redeliver(ctx context.Context, id string) ([]relay.Delivery, error)
}

var _ Relay = (*relay.Relay)(nil)

// Listing failed deliveries: at most maxFailedListed at once.
const (
	defaultFailedListed = 100
	maxFailedListed     = 1000
)

// failedDelivery is a failed delivery as GET /v1/relay/failed lists it.
type failedDelivery struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Target      string          `json:"target"` // without its query, which may hold a secret
	InterviewID string          `json:"interviewId"`
	Attempts    int             `json:"attempts"`
	LastError   string          `json:"lastError"`
	CreatedAt   time.Time       `json:"createdAt"`
	FailedAt    time.Time       `json:"failedAt"`
	Body        json.RawMessage `json:"body,omitempty"` // what was sent; absent when it never was
}

func failedOf(d relay.Delivery) failedDelivery {
	f := failedDelivery{ID: d.ID, Kind: d.Kind, Target: relay.Redacted(d.Target), InterviewID: d.InterviewID, Attempts: d.Attempts,
		LastError: d.LastError, CreatedAt: d.Created.UTC(), FailedAt: d.FailedAt.UTC()}
	if json.Valid(d.Body) {
		f.Body = d.Body
	}
	return f
}

// relayFailed lists the failed deliveries, newest first:
// GET /v1/relay/failed[?limit=N].
func (h *Handler) relayFailed(w http.ResponseWriter, r *http.Request) {
	limit := defaultFailedListed
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxFailedListed {
			writeError(w, r, h.log, errorf(http.StatusBadRequest, "limit must be a number from 1 to "+strconv.Itoa(maxFailedListed)))
			return
		}
		limit = n
	}
	ds, err := h.cfg.Relay.Failed(r.Context(), limit)
	if err != nil {
		writeError(w, r, h.log, h.relayUnavailable(err))
		return
	}
	out := struct {
		Failed []failedDelivery `json:"failed"`
	}{Failed: make([]failedDelivery, 0, len(ds))}
	for _, d := range ds {
		out.Failed = append(out.Failed, failedOf(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// relayRedeliver sends an event's failed deliveries again:
// POST /v1/relay/failed/{id}/redeliver.
func (h *Handler) relayRedeliver(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if !validInterviewID(id) { // ids are msg_ and base32: the same alphabet, within the same length
		writeError(w, r, h.log, errorf(http.StatusBadRequest, "the event id must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -"))
		return
	}
	ds, err := h.cfg.Relay.Redeliver(r.Context(), id)
	switch {
	case err != nil:
		writeError(w, r, h.log, h.relayUnavailable(err))
	case len(ds) == 0:
		writeError(w, r, h.log, errorf(http.StatusNotFound, "no failed delivery with this id: see GET /v1/relay/failed").coded("not_failed"))
	default:
		writeJSON(w, http.StatusAccepted, struct {
			ID          string `json:"id"`
			Redelivered int    `json:"redelivered"`
		}{id, len(ds)})
	}
}

// relayUnavailable is the error for a relay queue out of reach; what went
// wrong (addresses included) goes to the log only.
func (h *Handler) relayUnavailable(err error) *Error {
	h.log.Warn("relay: the queue is out of reach", "err", err)
	e := errorf(http.StatusServiceUnavailable, "the relay queue is out of reach; try again shortly").coded("relay_unavailable")
	e.RetryAfter = 5 * time.Second
	return e
}

// Verdict reads a finished flow's verdict, as /fetch-score does (the
// score it keeps, one upstream call shared by concurrent readers, under
// the upstream ceiling): the relay's session.ended carries it. A session
// that ended, or that neither this gateway nor the upstream knows any
// more, has none: "" and no error. Other errors (the upstream out of
// reach, or refusing the gateway's credentials) are worth trying again.
func (h *Handler) Verdict(ctx context.Context, interviewID string) (string, error) {
	score, err := h.sessions.score(ctx, interviewID)
	if err == nil {
		return score.Status, nil
	}
	if st := httpError(err).Status; st == http.StatusGone || st == http.StatusNotFound {
		return "", nil
	}
	return "", err
}

var _ relay.Scorer = (*Handler)(nil)
