package sse

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pushgate/pushgate/poller/flow"
)

// events serves one SSE client: it authorizes the stream, reads the
// current status (the snapshot), watches the interview so its poller runs,
// and hands the connection to the Broker. See conn for how the snapshot,
// dedupe, deadlines and the end of the stream work.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	id, err := h.authorized(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	last, err := lastEventID(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	u, err := h.cfg.Statuses.Current(r.Context(), id)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if !flow.Plausible(last, flow.Now()) {
		last = 0 // not an id a gateway issued: answered as a first connect
	}
	if u.Done() && last != 0 && len(h.cfg.Statuses.Since(id, last)) == 0 {
		w.WriteHeader(http.StatusNoContent) // the client saw the end: EventSource stops
		return
	}
	unwatch := h.cfg.Statuses.Watch(id)
	defer unwatch()

	// Without write deadlines one stuck client would freeze its stream
	// (r3labs blocks on it): refuse to stream through a ResponseWriter that
	// cannot set them, e.g. under middleware that hides the connection.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
		writeError(w, r, h.log, fmt.Errorf("sse: the ResponseWriter cannot set write deadlines: %w", err))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := newConn(w, h.cfg.Broker, h.cfg.Statuses, id, h.clientKey(r), last, cancel)
	if err := h.cfg.Broker.join(c); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	defer h.cfg.Broker.leave(c)
	h.cfg.Broker.serve(c, r.WithContext(ctx))
	c.close()
}

// lastEventID parses the Last-Event-ID header a reconnecting EventSource
// sends (0 when absent).
func lastEventID(r *http.Request) (uint64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "Last-Event-ID must be a non-negative integer")
	}
	return n, nil
}
