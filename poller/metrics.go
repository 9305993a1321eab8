package poller

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Manager's Prometheus collectors; nil records nothing.
type metrics struct {
	reads      *prometheus.CounterVec
	changes    prometheus.Counter
	recoveries prometheus.Counter
}

// newMetrics registers the Manager's collectors. The gauges read the
// Manager's state at scrape time.
func newMetrics(reg prometheus.Registerer, m *Manager) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	mt := &metrics{
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_status_reads_total",
			Help: "Status reads (poller ticks, snapshots, polling clients) by answer: memory (fresh enough, or backing off), single (one caller's read), shared (one read shared by several callers through singleflight), failed.",
		}, []string{"answer"}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_status_changes_total",
			Help: "Status changes observed and published.",
		}),
		recoveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_upstream_recoveries_total",
			Help: "Times a probe saw the upstream answer again after a failed probe; each cut the calls in flight and read every interview at once.",
		}),
	}
	for _, answer := range []string{"memory", "single", "shared", "failed"} {
		mt.reads.WithLabelValues(answer) // at 0 from the start, as rules expect
	}
	collectors := []prometheus.Collector{
		mt.reads, mt.changes, mt.recoveries,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pushgate_polling_equivalent_calls_total",
			Help: "Upstream status calls per-browser polling would have made: one per open stream per poll interval.",
		}, m.savings.equivalent),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pushgate_upstream_calls_avoided_total",
			Help: "Upstream status calls saved by the shared pollers: pushgate_polling_equivalent_calls_total less the status calls this node made.",
		}, m.savings.saved),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_pollers_active",
			Help: "Interviews with a running poller.",
		}, func() float64 { return float64(m.count(func(st *interview) bool { return st.stop != nil })) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_interviews_tracked",
			Help: "Interviews whose state (status, sequence, session) is kept in memory.",
		}, func() float64 { return float64(m.count(func(*interview) bool { return true })) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return mt, nil
}

func (mt *metrics) read(answer string) {
	if mt != nil {
		mt.reads.WithLabelValues(answer).Inc()
	}
}

func (mt *metrics) changed() {
	if mt != nil {
		mt.changes.Inc()
	}
}

func (mt *metrics) recovered() {
	if mt != nil {
		mt.recoveries.Inc()
	}
}
