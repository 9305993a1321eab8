package gateway

import (
	"cmp"

	"github.com/prometheus/client_golang/prometheus"
)

// Build names a build of the gateway: what pushgate -version prints, the
// startup log line, and pushgate_build_info.
type Build struct {
	Version   string // the module version, e.g. v1.4.0 or (devel)
	Revision  string // the VCS revision, with "-dirty" when built from a modified tree
	GoVersion string // the Go toolchain, e.g. go1.26.8
}

// collector is pushgate_build_info: a gauge of 1 whose labels name the
// build, so dashboards and alerts can tell the versions of a fleet apart.
func (b Build) collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pushgate_build_info",
		Help:        "The build of this node: version, VCS revision and Go version, as pushgate -version prints them; always 1.",
		ConstLabels: prometheus.Labels{"version": cmp.Or(b.Version, "unknown"), "revision": cmp.Or(b.Revision, "unknown"), "goversion": cmp.Or(b.GoVersion, "unknown")},
	})
	g.Set(1)
	return g
}
