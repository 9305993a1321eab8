package rediscluster

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Node's Prometheus collectors; nil records nothing.
type metrics struct {
	leases  *prometheus.CounterVec
	commits *prometheus.CounterVec
	feedEvt *prometheus.CounterVec
	backs   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, n *Node) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	mt := &metrics{
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_cluster_leases_total",
			Help: "Poll lease events of this node: acquired, released, lost (another node took it while this one was out of touch).",
		}, []string{"event"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_cluster_commits_total",
			Help: "Status changes committed to Redis by result: stored, conflict (another node committed first), failed.",
		}, []string{"result"}),
		backs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_cluster_recoveries_total",
			Help: "Times Redis was reachable again after this node found it out of reach, by cause: failover (a replica promoted by Sentinel or the Cluster now serves), restart (a server started during the outage serves), outage (the same servers: the network, a pause, a full Redis).",
		}, []string{"cause"}),
		feedEvt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_cluster_feed_total",
			Help: "Changes of other nodes heard on the channel: received, dropped (the poller fell behind; a resync follows), resync.",
		}, []string{"event"}),
	}
	// Every series a rule may watch exists from the start at 0, so the
	// first loss or failure shows as an increase.
	for vec, values := range map[*prometheus.CounterVec][]string{
		mt.leases:  {"acquired", "released", "lost"},
		mt.commits: {"stored", "conflict", "failed"},
		mt.feedEvt: {"received", "dropped", "resync"},
		mt.backs:   {causeFailover, causeRestart, causeOutage},
	} {
		for _, v := range values {
			vec.WithLabelValues(v)
		}
	}
	collectors := []prometheus.Collector{
		mt.leases, mt.commits, mt.feedEvt, mt.backs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_cluster_degraded",
			Help: "1 while Redis is out of reach and this node polls its watched interviews alone.",
		}, func() float64 {
			if n.down.Load() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_cluster_leases_held",
			Help: "Interviews this node polls for the whole cluster: the leases it holds, 0 while Redis is out of reach.",
		}, func() float64 { return float64(n.heldCount()) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return mt, nil
}

func (mt *metrics) lease(event string) {
	if mt != nil {
		mt.leases.WithLabelValues(event).Inc()
	}
}

func (mt *metrics) commit(result string) {
	if mt != nil {
		mt.commits.WithLabelValues(result).Inc()
	}
}

func (mt *metrics) feed(event string) {
	if mt != nil {
		mt.feedEvt.WithLabelValues(event).Inc()
	}
}

func (mt *metrics) recover(cause string) {
	if mt != nil {
		mt.backs.WithLabelValues(cause).Inc()
	}
}
