package deploy

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// kinds maps each apiVersion and kind the chart may render to its Go type.
// A kind missing here fails the test: add it, with its type, when the chart
// gains one.
var kinds = map[string]func() any{
	"apps/v1 Deployment":                      func() any { return new(appsv1.Deployment) },
	"v1 Service":                              func() any { return new(corev1.Service) },
	"v1 ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1 PersistentVolumeClaim":                func() any { return new(corev1.PersistentVolumeClaim) },
	"networking.k8s.io/v1 Ingress":            func() any { return new(networkingv1.Ingress) },
	"policy/v1 PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2 HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"monitoring.coreos.com/v1 ServiceMonitor": func() any { return new(monitoringv1.ServiceMonitor) },
	"monitoring.coreos.com/v1 PrometheusRule": func() any { return new(monitoringv1.PrometheusRule) },
}

// wantKinds is what each scenario renders, one object of each.
var wantKinds = map[string][]string{
	"defaults":                         {"Deployment", "Service"},
	"demo":                             {"Deployment", "Service"},
	"single":                           {"Deployment", "Ingress", "PersistentVolumeClaim", "Service"},
	"cluster":                          {"ConfigMap", "Deployment", "Ingress", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceMonitor"},
	"tls with the metrics listener":    {"Deployment", "Ingress", "PersistentVolumeClaim", "Service"},
	"tls without the metrics listener": {"Deployment", "Ingress", "PersistentVolumeClaim", "Service"},
	"every secret":                     {"Deployment", "Service"},
	"autoscaled":                       {"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceMonitor"},
	"autoscaled on streams":            {"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceMonitor"},
	"relay on an existing claim":       {"Deployment", "Ingress", "Service"},
	"relay in an emptyDir":             {"Deployment", "Ingress", "Service"},
	"other addresses and args":         {"Deployment", "Service"},
}

func TestRenderedObjectsDecodeStrictly(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			objects := render(t, s)
			var got []string
			for _, o := range objects {
				got = append(got, o.kind)
				newObject, ok := kinds[o.apiVersion+" "+o.kind]
				if !ok {
					t.Errorf("%s: apiVersion %q kind %q is not one the chart is checked for", o, o.apiVersion, o.kind)
					continue
				}
				v := newObject()
				if err := decodeStrict(o, v); err != nil {
					t.Error(err)
					continue
				}
				checkMetadata(t, o, v)
			}
			want, ok := wantKinds[s.name]
			if !ok {
				t.Fatalf("wantKinds has no entry for scenario %q", s.name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("rendered %v, want %v", got, want)
			}
		})
	}
}

// checkMetadata checks that an object is named and carries the chart's
// selector labels, and that whatever selects pods selects the chart's.
func checkMetadata(t *testing.T, o object, v any) {
	t.Helper()
	var head struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(o.json, &head); err != nil {
		t.Fatal(err)
	}
	labels := head.Metadata.Labels
	if o.name == "" {
		t.Errorf("%s: no metadata.name", o)
	}
	for k, want := range selectorLabels {
		if labels[k] != want {
			t.Errorf("%s: label %s = %q, want %q", o, k, labels[k], want)
		}
	}
	var selector map[string]string
	switch x := v.(type) {
	case *appsv1.Deployment:
		selector = x.Spec.Selector.MatchLabels
		if !reflect.DeepEqual(x.Spec.Template.Labels, mergeLabels(x.Spec.Template.Labels, selector)) {
			t.Errorf("%s: pod labels %v lack the selector %v", o, x.Spec.Template.Labels, selector)
		}
	case *corev1.Service:
		selector = x.Spec.Selector
	case *policyv1.PodDisruptionBudget:
		selector = x.Spec.Selector.MatchLabels
	case *monitoringv1.ServiceMonitor:
		selector = x.Spec.Selector.MatchLabels
	default:
		return
	}
	if !reflect.DeepEqual(selector, selectorLabels) {
		t.Errorf("%s: selects %v, want %v", o, selector, selectorLabels)
	}
}

// selectorLabels are the labels that pick this release's pods.
var selectorLabels = map[string]string{
	"app.kubernetes.io/name":     "pushgate",
	"app.kubernetes.io/instance": releaseName,
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestPrometheusRuleIsTheCanonicalRules checks that the PrometheusRule
// carries the groups of deploy/prometheus/alerts.yaml, as Prometheus reads
// them.
func TestPrometheusRuleIsTheCanonicalRules(t *testing.T) {
	canonical, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatalf("the canonical rules: %v", err)
	}
	var want struct {
		Groups any `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(canonical, &want); err != nil {
		t.Fatalf("prometheus/alerts.yaml: %v", err)
	}
	if want.Groups == nil {
		t.Fatal("prometheus/alerts.yaml has no groups")
	}
	rules := only(render(t, scenario{name: "cluster", files: []string{"examples/cluster.yaml"}}), "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("cluster renders %d PrometheusRules, want 1", len(rules))
	}
	var got struct {
		Spec struct {
			Groups any `json:"groups"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rules[0].json, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec.Groups, want.Groups) {
		gotJSON, _ := json.MarshalIndent(got.Spec.Groups, "", "  ")
		wantJSON, _ := json.MarshalIndent(want.Groups, "", "  ")
		t.Errorf("the PrometheusRule's spec.groups differ from prometheus/alerts.yaml's groups\ngot:  %.2000s\nwant: %.2000s", gotJSON, wantJSON)
	}
	var rule monitoringv1.PrometheusRule
	if err := decodeStrict(rules[0], &rule); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rule.Spec.Groups {
		alerts += len(g.Rules)
	}
	if alerts == 0 {
		t.Error("the PrometheusRule holds no rule")
	}
}

// TestDashboardIsTheCanonicalDashboard checks that the dashboard ConfigMap
// carries deploy/grafana/pushgate.json, under the sidecar's label.
func TestDashboardIsTheCanonicalDashboard(t *testing.T) {
	canonical, err := os.ReadFile("grafana/pushgate.json")
	if err != nil {
		t.Fatalf("the canonical dashboard: %v", err)
	}
	for _, s := range []scenario{
		{name: "cluster", files: []string{"examples/cluster.yaml"}},
		{name: "other sidecar label", files: []string{"examples/cluster.yaml"}, set: []string{"grafanaDashboard.labels.grafana_dashboard=null", "grafanaDashboard.labels.dashboards=pushgate"}},
	} {
		t.Run(s.name, func(t *testing.T) {
			maps := only(render(t, s), "ConfigMap")
			if len(maps) != 1 {
				t.Fatalf("%d ConfigMaps, want 1", len(maps))
			}
			var cm corev1.ConfigMap
			if err := decodeStrict(maps[0], &cm); err != nil {
				t.Fatal(err)
			}
			if got := cm.Data["pushgate.json"]; got != string(trimNewline(canonical)) {
				t.Errorf("data[pushgate.json] (%d bytes) differs from grafana/pushgate.json (%d bytes)", len(got), len(canonical))
			}
			var dashboard map[string]any
			if err := json.Unmarshal([]byte(cm.Data["pushgate.json"]), &dashboard); err != nil {
				t.Errorf("data[pushgate.json] is not JSON: %v", err)
			}
			want := map[string]string{"grafana_dashboard": "1"}
			if s.name != "cluster" {
				want = map[string]string{"dashboards": "pushgate"}
			}
			for k, v := range want {
				if cm.Labels[k] != v {
					t.Errorf("label %s = %q, want %q (labels %v)", k, cm.Labels[k], v, cm.Labels)
				}
			}
			if _, ok := cm.Labels["grafana_dashboard"]; ok && s.name != "cluster" {
				t.Errorf("label grafana_dashboard left after it was set to null")
			}
		})
	}
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	return b
}

// TestIngressCarriesTheSSEAnnotations checks that the examples' Ingresses
// keep streams unbuffered and open, and route to the Service's http port.
func TestIngressCarriesTheSSEAnnotations(t *testing.T) {
	want := map[string]string{
		"nginx.ingress.kubernetes.io/proxy-buffering":    "off",
		"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
		"nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
		"nginx.ingress.kubernetes.io/proxy-http-version": "1.1",
	}
	for _, name := range []string{"single", "cluster"} {
		t.Run(name, func(t *testing.T) {
			objects := render(t, scenario{name: name, files: []string{"examples/" + name + ".yaml"}})
			var ing networkingv1.Ingress
			var svc corev1.Service
			mustDecodeOne(t, objects, "Ingress", &ing)
			mustDecodeOne(t, objects, "Service", &svc)
			for k, v := range want {
				if ing.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, ing.Annotations[k], v)
				}
			}
			for _, rule := range ing.Spec.Rules {
				for _, p := range rule.HTTP.Paths {
					b := p.Backend.Service
					if b == nil || b.Name != svc.Name || !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == b.Port.Name && sp.Name == "http" }) {
						t.Errorf("path %s routes to %+v, want the Service %s, port http", p.Path, b, svc.Name)
					}
				}
			}
		})
	}
}

// mustDecodeOne decodes the one object of a kind into v.
func mustDecodeOne(t *testing.T, objects []object, kind string, v any) {
	t.Helper()
	of := only(objects, kind)
	if len(of) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(of), kind)
	}
	if err := decodeStrict(of[0], v); err != nil {
		t.Fatal(err)
	}
}
