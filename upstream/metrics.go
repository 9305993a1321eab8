package upstream

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Client's Prometheus collectors; nil records nothing.
type metrics struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_upstream_calls_total",
			Help: "Calls to the upstream onboarding API, by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pushgate_upstream_call_duration_seconds",
			Help:    "Duration of calls to the upstream onboarding API, by endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
	}
	// Every series a rule may watch exists from the start at 0, so the
	// first failure shows as an increase.
	for _, ep := range endpoints {
		m.latency.WithLabelValues(ep)
		for _, o := range outcomes {
			m.calls.WithLabelValues(ep, o)
		}
	}
	for _, c := range []prometheus.Collector{m.calls, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records one call of op that began at began and ended with
// *err. It is deferred by each call, so it reads the final error. A call
// that was never sent (no session token) is not a call.
func (m *metrics) observe(op string, began time.Time, err *error) {
	if m == nil || errors.Is(*err, ErrNoSession) {
		return
	}
	m.latency.WithLabelValues(op).Observe(time.Since(began).Seconds())
	m.calls.WithLabelValues(op, outcome(*err)).Inc()
}

// endpoints and outcomes are the label values of the calls' metrics.
var (
	endpoints = []string{"start", "onboarding-url", "status", "session_status", "score", "log-in", "probe"}
	outcomes  = []string{"ok", "canceled", "not_found", "unauthorized", "rate_limited", "unavailable", "malformed", "rejected"}
)

// outcome names the result of a call for the metrics (one of outcomes).
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return "rejected"
}
