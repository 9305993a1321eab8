package sse

import (
	"errors"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// brokerMetrics are the Broker's Prometheus collectors; nil records nothing.
type brokerMetrics struct {
	published prometheus.Counter
	delivered prometheus.Counter
	dropped   *prometheus.CounterVec
	evicted   *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	latency   prometheus.Histogram
	connects  prometheus.Counter
}

func newBrokerMetrics(reg prometheus.Registerer, b *Broker) (*brokerMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &brokerMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_sse_events_published_total",
			Help: "Status changes published to the interviews' streams on this node.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_sse_events_delivered_total",
			Help: "Status events written to clients (snapshots included).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_sse_events_dropped_total",
			Help: "Status events not written: duplicate (the client had it already), buffer_full (the stream's buffer was full; its clients were sent to reconnect).",
		}, []string{"reason"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_sse_clients_dropped_total",
			Help: "Clients whose write failed: slow (missed the write deadline) or gone (connection closed).",
		}, []string{"reason"}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_sse_connects_total",
			Help: "SSE streams opened on this node (connections admitted under the caps).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pushgate_sse_delivery_seconds",
			Help:    "Time from a status change being numbered, on whichever node read it or took its webhook, to its event being written to a client (snapshots not counted, nor changes numbered ahead of this node's clock; across nodes it includes their clocks' difference).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_sse_rejected_total",
			Help: "Streams refused: interview_limit, client_limit, node_limit (429/429/503) or draining (503).",
		}, []string{"reason"}),
	}
	// Every series a rule may watch exists from the start at 0, so the
	// first drop or refusal shows as an increase.
	zero(m.dropped, "duplicate", "buffer_full")
	zero(m.evicted, "slow", "gone")
	zero(m.rejected, "interview_limit", "client_limit", "node_limit", "draining")
	collectors := []prometheus.Collector{
		m.published, m.delivered, m.dropped, m.evicted, m.rejected, m.latency, m.connects,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_max_streams",
			Help: "This node's cap on open SSE streams (-max-streams, or the one derived from the open-file limit); 0 means none.",
		}, func() float64 {
			if b.cfg.MaxStreams == math.MaxInt {
				return 0
			}
			return float64(b.cfg.MaxStreams)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_sse_connections",
			Help: "Open SSE connections on this node.",
		}, func() float64 { return float64(b.Connections()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_sse_streams",
			Help: "Interviews with open SSE connections on this node.",
		}, func() float64 { return float64(b.streamCount()) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// zero makes the series of vec's label values exist, at 0.
func zero(vec *prometheus.CounterVec, values ...string) {
	for _, v := range values {
		vec.WithLabelValues(v)
	}
}

func (m *brokerMetrics) connect() {
	if m != nil {
		m.connects.Inc()
	}
}

func (m *brokerMetrics) publish() {
	if m != nil {
		m.published.Inc()
	}
}

// deliver counts n events written to a client; stamped, when not zero,
// is when the published change among them was numbered.
func (m *brokerMetrics) deliver(n int, stamped time.Time) {
	if m == nil {
		return
	}
	m.delivered.Add(float64(n))
	// A stamp ahead of this node's clock (another node's clock, or one
	// raised to a client's id: see flow.Stamped) says nothing of the
	// delay: not observed.
	if d := time.Since(stamped); !stamped.IsZero() && d >= 0 {
		m.latency.Observe(d.Seconds())
	}
}

func (m *brokerMetrics) drop(reason string) {
	if m != nil {
		m.dropped.WithLabelValues(reason).Inc()
	}
}

func (m *brokerMetrics) evict(reason string) {
	if m != nil {
		m.evicted.WithLabelValues(reason).Inc()
	}
}

// reject counts a refused stream by the cap (or shutdown) that refused it.
func (m *brokerMetrics) reject(err error) {
	if m == nil {
		return
	}
	reason := "draining"
	switch {
	case errors.Is(err, errInterviewLimit):
		reason = "interview_limit"
	case errors.Is(err, errClientLimit):
		reason = "client_limit"
	case errors.Is(err, errStreamLimit):
		reason = "node_limit"
	}
	m.rejected.WithLabelValues(reason).Inc()
}

// handlerMetrics are the Handler's Prometheus collectors; nil records
// nothing.
type handlerMetrics struct {
	requests    *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	webhooks    *prometheus.CounterVec
	// webhookTokens counts the token endpoint's answers.
	webhookTokens *prometheus.CounterVec
	// flowOrigin counts onboarding URLs on an origin the configured flow
	// origins do not list.
	flowOrigin prometheus.Counter
}

func newHandlerMetrics(reg prometheus.Registerer, h *Handler) (*handlerMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &handlerMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_rate_limited_total",
			Help: "Requests refused by a per-client rate limit, by route.",
		}, []string{"route"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_webhooks_total",
			Help: "Webhook calls from the upstream, by result: applied (a new status), duplicate (already known), older (ignored: the flow had moved on), unknown_interview (acknowledged, ignored), refused (4xx).",
		}, []string{"result"}),
	}
	m.webhookTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pushgate_webhook_tokens_total",
		Help: "Answers of the webhooks' OAuth token endpoint, by result: issued, refused (wrong client, grant or body).",
	}, []string{"result"})
	m.flowOrigin = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pushgate_flow_origin_mismatch_total",
		Help: "Onboarding URLs the upstream answered on an origin -flow-origin does not list: the page's CSP blocks those iframes.",
	})
	zero(m.rateLimited, "/onboarding-url", "/onboarding-url (node)", "/fetch-score", apiPrefix,
		"/webhooks/token", "/webhooks/onboarding-status", "/webhooks/onboarding-status/{secret}")
	zero(m.webhooks, "applied", "duplicate", "older", "unknown_interview", "unknown_status", "refused")
	zero(m.webhookTokens, "issued", "refused")
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushgate_ready",
		Help: "1 when /readyz answers 200 (degraded included), 0 when it answers 503: draining, or the upstream unavailable.",
	}, func() float64 {
		if reason, _, _ := h.readiness(); reason != "" {
			return 0
		}
		return 1
	})
	for _, c := range []prometheus.Collector{m.requests, m.rateLimited, m.webhooks, m.webhookTokens, m.flowOrigin, ready} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *handlerMetrics) rateLimit(route string) {
	if m != nil {
		m.rateLimited.WithLabelValues(route).Inc()
	}
}

func (m *handlerMetrics) flowOriginMismatch() {
	if m != nil {
		m.flowOrigin.Inc()
	}
}

func (m *handlerMetrics) webhookToken(result string) {
	if m != nil {
		m.webhookTokens.WithLabelValues(result).Inc()
	}
}

func (m *handlerMetrics) webhook(result string) {
	if m != nil {
		m.webhooks.WithLabelValues(result).Inc()
	}
}
