package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "helm/pushgate"

// kubeVersion is the cluster version the chart is rendered and linted for.
const kubeVersion = "v1.33.0"

// releaseName and namespace are those of every rendering.
const (
	releaseName = "pushgate"
	namespace   = "pushgate"
)

// A scenario is one set of values: values files (relative to the chart)
// and --set overrides on top.
type scenario struct {
	name  string
	files []string
	set   []string
}

// everySecret names each secret flag as a key of one Secret.
var everySecret = []string{
	"secret", "previous-secret", "api-key", "api-token", "admin-token", "admin-password",
	"webhook-secret", "webhook-client-secret", "webhook-header", "relay-secret",
	"redis-url", "redis-password", "sim-control-token",
}

// scenarios are rendered by every test that checks rendered objects: the
// defaults, the three examples, and the branches the examples leave out.
var scenarios = func() []scenario {
	secrets := []string{"upstream=https://upstream.example", "secrets.existingSecret=pushgate"}
	for _, flag := range everySecret {
		secrets = append(secrets, "secrets.keys."+flag+"="+flag)
	}
	return []scenario{
		{name: "defaults"},
		{name: "demo", files: []string{"examples/demo.yaml"}},
		{name: "single", files: []string{"examples/single.yaml"}},
		{name: "cluster", files: []string{"examples/cluster.yaml"}},
		{name: "tls with the metrics listener", files: []string{"examples/single.yaml"}, set: []string{"tls.secretName=push-tls"}},
		{name: "tls without the metrics listener", files: []string{"examples/single.yaml"}, set: []string{"tls.secretName=push-tls", "metrics.addr="}},
		{name: "every secret", set: secrets},
		{name: "autoscaled", files: []string{"examples/cluster.yaml"}, set: []string{"hpa.enabled=true"}},
		{name: "autoscaled on streams", files: []string{"examples/cluster.yaml"}, set: []string{
			"hpa.enabled=true", "hpa.targetCPUUtilizationPercentage=null",
			"hpa.metrics[0].type=Pods", "hpa.metrics[0].pods.metric.name=pushgate_sse_connections",
			"hpa.metrics[0].pods.target.type=AverageValue", "hpa.metrics[0].pods.target.averageValue=10000",
		}},
		{name: "relay on an existing claim", files: []string{"examples/single.yaml"}, set: []string{"relay.persistence.existingClaim=relay-queue"}},
		{name: "relay in an emptyDir", files: []string{"examples/single.yaml"}, set: []string{"relay.persistence.enabled=false"}},
		{name: "other addresses and args", set: []string{"addr=0.0.0.0:8443", "metrics.addr=[::]:9102", "service.metricsPort=9102", "extraArgs[0]=-log-level=debug", "extraArgs[1]=-poll-interval=2s"}},
	}
}()

// values merges a scenario's values files and overrides, as helm's -f and
// --set do.
func (s scenario) values(t *testing.T) map[string]any {
	t.Helper()
	opts := values.Options{Values: s.set}
	for _, f := range s.files {
		opts.ValueFiles = append(opts.ValueFiles, filepath.Join(chartDir, f))
	}
	vals, err := opts.MergeValues(nil)
	if err != nil {
		t.Fatalf("%s: values: %v", s.name, err)
	}
	return vals
}

func parseKubeVersion(t *testing.T) *common.KubeVersion {
	t.Helper()
	v, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// template renders the chart as `helm template` does: an install, dry run,
// client only.
func template(t *testing.T, s scenario) (*release.Release, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load %s: %v", chartDir, err)
	}
	install := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.Replace = true
	install.KubeVersion = parseKubeVersion(t)
	rel, err := install.Run(ch, s.values(t))
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("install returned a %T, want a *release.Release", rel)
	}
	return r, nil
}

// object is one rendered document: its kind, name and JSON.
type object struct {
	apiVersion, kind, name string
	source                 string // the template it came from
	json                   []byte
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.kind, o.name, o.source) }

// render renders a scenario that must succeed, and splits its manifest into
// objects, in a stable order.
func render(t *testing.T, s scenario) []object {
	t.Helper()
	rel, err := template(t, s)
	if err != nil {
		t.Fatalf("%s: helm template: %v", s.name, err)
	}
	var objects []object
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		// YAMLToJSONStrict refuses duplicate keys, which a decoder would
		// otherwise resolve silently.
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			t.Fatalf("%s: a rendered document is not YAML: %v\n%s", s.name, err, doc)
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(js, &head); err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, doc)
		}
		objects = append(objects, object{head.APIVersion, head.Kind, head.Metadata.Name, sourceOf(doc), js})
	}
	sort.Slice(objects, func(i, j int) bool { return objects[i].String() < objects[j].String() })
	return objects
}

// stripComments drops the comment lines of a YAML document (helm's
// "# Source:" header).
func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func sourceOf(doc string) string {
	for line := range strings.Lines(doc) {
		if src, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
			return src
		}
	}
	return "?"
}

// decodeStrict decodes an object's JSON into v, refusing fields v's type
// does not have (a misspelled or misplaced field in a template).
func decodeStrict(o object, v any) error {
	dec := json.NewDecoder(bytes.NewReader(o.json))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	return nil
}

// only returns the objects of one kind.
func only(objects []object, kind string) []object {
	var out []object
	for _, o := range objects {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func TestLint(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = namespace
			lint.KubeVersion = parseKubeVersion(t)
			res := lint.Run([]string{chartDir}, s.values(t))
			for _, m := range res.Messages {
				t.Log(m.Error())
			}
			if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
				t.Errorf("helm lint --strict: %d chart(s) linted, errors: %v", res.TotalChartsLinted, res.Errors)
			}
		})
	}
}

// TestNotesSayHowToReachIt checks what NOTES.txt tells whoever installs
// the chart.
func TestNotesSayHowToReachIt(t *testing.T) {
	for _, c := range []struct {
		s         scenario
		want, not []string
	}{
		{scenario{name: "demo", files: []string{"examples/demo.yaml"}},
			[]string{"kubectl -n pushgate port-forward deploy/pushgate 8080:8080 8090:8090", "terminationGracePeriodSeconds is 20", "browser tokens die with the pod"}, []string{"WARNING"}},
		{scenario{name: "single", files: []string{"examples/single.yaml"}},
			[]string{"https://push.example.com/", "kubectl -n pushgate rollout restart deploy/pushgate"}, []string{"WARNING", "port-forward"}},
		{scenario{name: "cluster", files: []string{"examples/cluster.yaml"}},
			[]string{"3 pods, a cluster sharing one Redis", "terminationGracePeriodSeconds is 25"}, []string{"WARNING"}},
		{scenario{name: "public sessions", set: []string{"upstream=https://upstream.example"}},
			[]string{"WARNING: anyone who reaches /onboarding-url", "WARNING: config.flow-origin is not set", "port-forward svc/pushgate 8080:8080"}, nil},
	} {
		t.Run(c.s.name, func(t *testing.T) {
			rel, err := template(t, c.s)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(rel.Info.Notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, rel.Info.Notes)
				}
			}
			for _, n := range c.not {
				if strings.Contains(rel.Info.Notes, n) {
					t.Errorf("NOTES hold %q:\n%s", n, rel.Info.Notes)
				}
			}
		})
	}
}
