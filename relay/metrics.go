package relay

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Relay's collectors; its methods do nothing on a nil
// receiver (no Config.Metrics).
type metrics struct {
	events  *prometheus.CounterVec
	latency prometheus.Histogram
	queue   *queueCollector
}

// outcomes every kind is counted under from the start, so that a rate or
// an alert sees 0 before the first event.
var outcomes = []string{"queued", "delivered", "retried", "failed", "dropped", "redelivered"}

func newMetrics(reg prometheus.Registerer, r *Relay) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_relay_events_total",
			Help: "Relay deliveries (one event to one target URL) by kind (upstream, status, ended) and outcome: queued, delivered, retried (an attempt failed, tried again later), failed (kept for redelivery), dropped (never queued: the queue was full, or out of reach too long), redelivered (through the server API).",
		}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pushgate_relay_delivery_seconds",
			Help:    "Time from an event to its delivery (the target's 2xx), retries included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400},
		}),
		queue: &queueCollector{r: r,
			depth:  prometheus.NewDesc("pushgate_relay_queue_depth", "Relay deliveries waiting (not failed), in the queue this node uses (shared by the cluster with Redis).", nil, nil),
			oldest: prometheus.NewDesc("pushgate_relay_oldest_event_age_seconds", "Age of the oldest relay delivery waiting; 0 when none waits.", nil, nil),
			memory: prometheus.NewDesc("pushgate_relay_waiting_in_memory", "Relay deliveries waiting in this node's memory because the queue (Redis, or the relay directory) could not take them; lost if the node stops before the queue is back.", nil, nil),
		},
	}
	for _, k := range Kinds {
		for _, o := range outcomes {
			m.events.WithLabelValues(k, o)
		}
	}
	for _, c := range []prometheus.Collector{m.events, m.latency, m.queue} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) count(ds []Delivery, outcome string) {
	if m == nil {
		return
	}
	for _, d := range ds {
		m.events.WithLabelValues(d.Kind, outcome).Inc()
	}
}

func (m *metrics) delivered(d Delivery) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(d.Kind, "delivered").Inc()
	m.latency.Observe(time.Since(d.Created).Seconds())
}

// queueCollector reads the queue's depth and oldest delivery at each
// scrape, and what waits in memory for it.
type queueCollector struct {
	r                     *Relay
	depth, oldest, memory *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldest
	ch <- c.memory
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(c.r.waitingInMemory()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := c.r.queue.Stats(ctx)
	if err != nil {
		return // out of reach: no reading rather than a wrong one
	}
	age := 0.0
	if !s.Oldest.IsZero() {
		age = time.Since(s.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Depth))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
