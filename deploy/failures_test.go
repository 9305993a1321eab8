package deploy

import (
	"math"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// TestInconsistentValuesFail checks that values pushgate or Kubernetes
// would trip over fail `helm template`, saying what to change.
func TestInconsistentValuesFail(t *testing.T) {
	cluster := []string{"examples/cluster.yaml"}
	for _, c := range []struct {
		name  string
		files []string
		set   []string
		want  string
	}{
		{"grace period shorter than drain and grace", nil, []string{"terminationGracePeriodSeconds=10"},
			"terminationGracePeriodSeconds (10) is shorter than drainDelay + shutdownGrace + 1s (16s)"},
		{"grace period at drain and grace, without pushgate's second", nil, []string{"terminationGracePeriodSeconds=15"},
			"terminationGracePeriodSeconds (15) is shorter than drainDelay + shutdownGrace + 1s (16s)"},
		{"drain delay as long as the shutdown grace", nil, []string{"drainDelay=10s"},
			"drainDelay (10s) must be below shutdownGrace (10s)"},
		{"drain delay longer than the shutdown grace", nil, []string{"drainDelay=1m", "shutdownGrace=30s"},
			"drainDelay (1m) must be below shutdownGrace (30s)"},
		{"drain delay not a duration", nil, []string{"drainDelay=five"},
			`drainDelay "five" is not a duration`},
		{"drain delay with a fraction", nil, []string{"drainDelay=1.5s"},
			`drainDelay "1.5s" is not a duration`},
		{"drain delay without a unit", nil, []string{"drainDelay=5"},
			`drainDelay "5" is not a duration`},
		{"shutdown grace in days", nil, []string{"shutdownGrace=1d"},
			`shutdownGrace "1d" is not a duration`},
		{"three replicas without Redis", nil, []string{"replicaCount=3"},
			"replicaCount 3 needs Redis"},
		{"an HPA without Redis", nil, []string{"hpa.enabled=true"},
			"hpa.enabled with hpa.maxReplicas 6 needs Redis"},
		{"an HPA on CPU without a CPU request", cluster, []string{"hpa.enabled=true", "resources.requests.cpu=null"},
			"hpa.targetCPUUtilizationPercentage is a share of resources.requests.cpu"},
		{"an HPA whose maximum is below its minimum", cluster, []string{"hpa.enabled=true", "hpa.minReplicas=4", "hpa.maxReplicas=3"},
			"hpa.maxReplicas (3) is below hpa.minReplicas (4)"},
		{"Redis without the secret", nil, []string{"upstream=https://upstream.example", "redis.url=redis://redis:6379", "secrets.existingSecret=pushgate", "secrets.keys.api-key=api-key"},
			"Redis needs the secret"},
		{"Redis without upstream", cluster, []string{"upstream="},
			"Redis needs upstream"},
		{"Redis given twice", cluster, []string{"redis.url=redis://redis:6379"},
			"redis.url and secrets.keys.redis-url: give the Redis URL once"},
		{"a relay directory in a cluster", cluster, []string{"relay.dir=/var/lib/pushgate/relay"},
			"relay.dir is unused with Redis"},
		{"a secret in config", nil, []string{"config.api-key=plain"},
			"config.api-key: a secret; give it from secrets.existingSecret with secrets.keys.api-key"},
		{"a flag the chart sets, in config", nil, []string{"config.drain-delay=3s"},
			"config.drain-delay: the chart sets -drain-delay; set drainDelay instead"},
		{"a config key that is no flag name", nil, []string{"config.POLL_INTERVAL=2s"},
			"config.POLL_INTERVAL: write a pushgate flag's name without its dash"},
		{"secret keys without the Secret", nil, []string{"secrets.keys.secret=secret"},
			"secrets.keys needs secrets.existingSecret"},
		{"a Secret without keys", nil, []string{"secrets.existingSecret=pushgate"},
			`secrets.existingSecret "pushgate" is set but secrets.keys names none of its keys`},
		{"a loopback address", nil, []string{"addr=127.0.0.1:8080"},
			`addr "127.0.0.1:8080" listens on loopback only`},
		{"a loopback metrics address", nil, []string{"metrics.addr=localhost:9090"},
			`metrics.addr "localhost:9090" listens on loopback only`},
		{"an address without a port", nil, []string{"addr=0.0.0.0"},
			`addr "0.0.0.0": want a listen address with a port`},
		{"metrics on the gateway's port", nil, []string{"metrics.addr=:8080"},
			`metrics.addr ":8080" and addr ":8080" share a port`},
		{"a relative relay directory", nil, []string{"relay.dir=relay"},
			`relay.dir "relay": want an absolute path`},
		{"an upstream that is no URL", nil, []string{"upstream=demo-api.incodesmile.com"},
			`upstream "demo-api.incodesmile.com": want the upstream's base URL`},
		{"a secret flag the chart does not know", nil, []string{"secrets.existingSecret=pushgate", "secrets.keys.token=token"},
			"secrets.keys.token: not a secret flag of pushgate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := template(t, scenario{name: c.name, files: c.files, set: c.set})
			if err == nil {
				t.Fatalf("helm template with %v succeeded; want it to fail with %q", c.set, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("helm template with %v failed with\n  %v\nwant a message with\n  %s", c.set, err, c.want)
			}
		})
	}
}

// TestGracePeriodFollowsTheDurations checks the chart's reading of Go
// durations against time.ParseDuration: terminationGracePeriodSeconds is
// drainDelay + shutdownGrace + 1 s, rounded up, plus 4 s.
func TestGracePeriodFollowsTheDurations(t *testing.T) {
	for _, c := range []struct{ drain, grace string }{
		{"0", "10s"},
		{"0s", "1s"},
		{"5s", "10s"},
		{"999ms", "1s"},
		{"1m30s", "2m"},
		{"500ms", "1h"},
		{"1h2m3s4ms", "2h"},
		{"10s", "1m1s"},
	} {
		t.Run(c.drain+"+"+c.grace, func(t *testing.T) {
			objects := render(t, scenario{name: "durations", set: []string{"drainDelay=" + c.drain, "shutdownGrace=" + c.grace}})
			var d appsv1.Deployment
			mustDecodeOne(t, objects, "Deployment", &d)
			drain, _ := time.ParseDuration(c.drain)
			grace, _ := time.ParseDuration(c.grace)
			want := int64(math.Ceil((drain + grace + time.Second).Seconds())) + 4
			if got := d.Spec.Template.Spec.TerminationGracePeriodSeconds; got == nil || *got != want {
				t.Errorf("terminationGracePeriodSeconds %v, want %d", got, want)
			}
		})
	}
}
