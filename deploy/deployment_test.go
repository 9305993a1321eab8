package deploy

import (
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestDeploymentMatchesTheBinary holds each scenario's Deployment against
// `pushgate -h`: every variable and argument names a flag, the listen
// addresses are the container ports, and the probes reach pushgate's
// health routes on them.
func TestDeploymentMatchesTheBinary(t *testing.T) {
	fs := pushgateFlags(t)
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			objects := render(t, s)
			var d appsv1.Deployment
			mustDecodeOne(t, objects, "Deployment", &d)
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 || pod.Containers[0].Name != "pushgate" {
				t.Fatalf("containers %v, want one named pushgate", pod.Containers)
			}
			c := pod.Containers[0]
			env := checkEnv(t, fs, c)
			checkArgs(t, fs, c)
			ports := checkPorts(t, c, env)
			checkProbes(t, c, env, ports)
			checkGracePeriod(t, pod, env)
			checkSecretFiles(t, pod, c, env)
			checkSecurity(t, pod, c)
			checkVolumes(t, objects, d, env)
			checkSpread(t, d)
			checkService(t, objects, ports)
			checkReplicas(t, objects, d, env)
		})
	}
}

// checkEnv checks that every PUSHGATE_ variable names a flag of the binary
// (or the file of one), and returns the variables by name.
func checkEnv(t *testing.T, fs flagSet, c corev1.Container) map[string]corev1.EnvVar {
	t.Helper()
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("env %s is set twice", e.Name)
		}
		env[e.Name] = e
		if !strings.HasPrefix(e.Name, "PUSHGATE_") {
			continue
		}
		if _, _, ok := fs.flagOfEnv(e.Name); !ok {
			t.Errorf("env %s names no flag of pushgate (pushgate -h lists none whose variable it is, or whose _FILE)", e.Name)
		}
		if e.ValueFrom != nil {
			t.Errorf("env %s comes from %v: the chart gives secrets as files, never as variables", e.Name, e.ValueFrom)
		}
	}
	for _, want := range []string{"PUSHGATE_ADDR", "PUSHGATE_DRAIN_DELAY", "PUSHGATE_SHUTDOWN_GRACE"} {
		if _, ok := env[want]; !ok {
			t.Errorf("env %s is not set", want)
		}
	}
	return env
}

// flagArg is one argument as the chart passes them: -name or -name=value.
var flagArg = regexp.MustCompile(`^--?([a-z0-9][a-z0-9-]*)(=.*)?$`)

func checkArgs(t *testing.T, fs flagSet, c corev1.Container) {
	t.Helper()
	if len(c.Command) > 0 {
		t.Errorf("command %v replaces the image's entrypoint", c.Command)
	}
	for _, a := range c.Args {
		m := flagArg.FindStringSubmatch(a)
		if m == nil {
			t.Errorf("arg %q is not -name=value", a)
		} else if !fs.flags[m[1]] {
			t.Errorf("arg %q names no flag of pushgate", a)
		}
	}
}

// checkPorts checks that -addr and -metrics-addr listen on the container
// ports named http and metrics, and returns the container ports by name.
func checkPorts(t *testing.T, c corev1.Container, env map[string]corev1.EnvVar) map[string]int32 {
	t.Helper()
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, variable := range map[string]string{"http": "PUSHGATE_ADDR", "metrics": "PUSHGATE_METRICS_ADDR"} {
		e, set := env[variable]
		port, named := ports[name]
		if set != named {
			t.Errorf("%s set: %v, but container port %s: %v", variable, set, name, named)
			continue
		}
		if !set {
			continue
		}
		host, p, err := net.SplitHostPort(e.Value)
		if err != nil {
			t.Errorf("%s=%q: %v", variable, e.Value, err)
			continue
		}
		if strconv.Itoa(int(port)) != p {
			t.Errorf("%s=%q listens on %s, but container port %s is %d", variable, e.Value, p, name, port)
		}
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			t.Errorf("%s=%q is loopback: probes and the Service cannot reach it", variable, e.Value)
		}
	}
	return ports
}

// checkProbes checks that liveness asks /healthz and readiness /readyz, on
// a container port: the metrics listener's when there is one.
func checkProbes(t *testing.T, c corev1.Container, env map[string]corev1.EnvVar, ports map[string]int32) {
	t.Helper()
	wantPort := "http"
	if _, ok := env["PUSHGATE_METRICS_ADDR"]; ok {
		wantPort = "metrics"
	}
	wantScheme := corev1.URISchemeHTTP
	if _, tls := env["PUSHGATE_TLS_CERT"]; tls && wantPort == "http" {
		wantScheme = corev1.URISchemeHTTPS
	}
	for _, p := range []struct {
		kind, path string
		probe      *corev1.Probe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: %+v, want an httpGet", p.kind, p.probe)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			t.Errorf("%s probe asks %s, want %s", p.kind, g.Path, p.path)
		}
		name, ok := portName(g.Port, ports)
		if !ok {
			t.Errorf("%s probe port %s is no container port (%v)", p.kind, g.Port.String(), ports)
		} else if name != wantPort {
			t.Errorf("%s probe on port %s, want %s", p.kind, name, wantPort)
		}
		if g.Scheme != wantScheme {
			t.Errorf("%s probe scheme %s, want %s", p.kind, g.Scheme, wantScheme)
		}
	}
}

// portName resolves a port given by name or number to a container port's
// name.
func portName(p intstr.IntOrString, ports map[string]int32) (string, bool) {
	if p.Type == intstr.String {
		_, ok := ports[p.StrVal]
		return p.StrVal, ok
	}
	for name, n := range ports {
		if n == p.IntVal {
			return name, true
		}
	}
	return "", false
}

// checkGracePeriod checks that Kubernetes waits for pushgate's own bound
// after SIGTERM: -drain-delay + -shutdown-grace + 1 s.
func checkGracePeriod(t *testing.T, pod corev1.PodSpec, env map[string]corev1.EnvVar) {
	t.Helper()
	drain, err1 := time.ParseDuration(env["PUSHGATE_DRAIN_DELAY"].Value)
	grace, err2 := time.ParseDuration(env["PUSHGATE_SHUTDOWN_GRACE"].Value)
	if err1 != nil || err2 != nil {
		t.Fatalf("durations: %v, %v", err1, err2)
	}
	if drain >= grace {
		t.Errorf("-drain-delay %v is not below -shutdown-grace %v: pushgate would refuse to start", drain, grace)
	}
	bound := drain + grace + time.Second
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second < bound {
		t.Errorf("terminationGracePeriodSeconds %v is below pushgate's bound of %v", pod.TerminationGracePeriodSeconds, bound)
	}
}

// checkSecretFiles checks that no secret flag is given as a value, and that
// each PUSHGATE_<NAME>_FILE names a file of a read-only Secret volume.
func checkSecretFiles(t *testing.T, pod corev1.PodSpec, c corev1.Container, env map[string]corev1.EnvVar) {
	t.Helper()
	for _, flag := range everySecret {
		if _, ok := env[envName(flag)]; ok {
			t.Errorf("env %s gives a secret as a value; want %s_FILE", envName(flag), envName(flag))
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for name, e := range env {
		if !strings.HasPrefix(name, "PUSHGATE_") || !strings.HasSuffix(name, "_FILE") {
			continue
		}
		dir, file := path.Split(e.Value)
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return path.Clean(m.MountPath) == path.Clean(dir) })
		if i < 0 {
			t.Errorf("%s=%s: no volume is mounted at %s", name, e.Value, dir)
			continue
		}
		m := c.VolumeMounts[i]
		v := volumes[m.Name]
		if !m.ReadOnly || v.Secret == nil {
			t.Errorf("%s=%s: the volume %s is not a Secret mounted read-only", name, e.Value, m.Name)
			continue
		}
		if !slices.ContainsFunc(v.Secret.Items, func(k corev1.KeyToPath) bool { return k.Path == file }) {
			t.Errorf("%s=%s: Secret %s maps no key to %s", name, e.Value, v.Secret.SecretName, file)
		}
	}
	if _, ok := env["PUSHGATE_TLS_CERT"]; ok {
		for _, variable := range []string{"PUSHGATE_TLS_CERT", "PUSHGATE_TLS_KEY"} {
			dir := path.Dir(env[variable].Value)
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return path.Clean(m.MountPath) == dir && m.ReadOnly && volumes[m.Name].Secret != nil
			}) {
				t.Errorf("%s=%s is on no read-only Secret volume", variable, env[variable].Value)
			}
		}
	}
}

// checkSecurity checks the pod runs as the image's non-root user, on a
// read-only root filesystem, without privileges, with /tmp writable.
func checkSecurity(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	ps, cs := pod.SecurityContext, c.SecurityContext
	if ps == nil || cs == nil {
		t.Fatal("no securityContext")
	}
	is := func(b *bool) bool { return b != nil && *b }
	if !is(ps.RunAsNonRoot) || ps.RunAsUser == nil || *ps.RunAsUser != 65532 || ps.FSGroup == nil || *ps.FSGroup != 65532 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, runAsUser and fsGroup 65532", ps)
	}
	if !is(cs.ReadOnlyRootFilesystem) || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation || !is(cs.RunAsNonRoot) {
		t.Errorf("container securityContext %+v: want readOnlyRootFilesystem, no privilege escalation, runAsNonRoot", cs)
	}
	if cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) > 0 {
		t.Errorf("capabilities %+v: want drop ALL", cs.Capabilities)
	}
	for _, sc := range []*corev1.SeccompProfile{ps.SeccompProfile, cs.SeccompProfile} {
		if sc == nil || sc.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("seccompProfile %+v, want RuntimeDefault", sc)
		}
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("enableServiceLinks is not false: the Service's variables (PUSHGATE_SERVICE_HOST, ...) would land where pushgate reads its flags")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false")
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
		t.Error("nothing is mounted at /tmp")
	}
}

// checkVolumes checks the relay directory: a volume of its own, a claim
// that exists, and a strategy that lets one pod hold it at a time.
func checkVolumes(t *testing.T, objects []object, d appsv1.Deployment, env map[string]corev1.EnvVar) {
	t.Helper()
	dir, ok := env["PUSHGATE_RELAY_DIR"]
	if !ok {
		return
	}
	c := d.Spec.Template.Spec.Containers[0]
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir.Value })
	if i < 0 || c.VolumeMounts[i].ReadOnly {
		t.Fatalf("PUSHGATE_RELAY_DIR=%s: no writable volume is mounted there", dir.Value)
	}
	var v corev1.Volume
	for _, vol := range d.Spec.Template.Spec.Volumes {
		if vol.Name == c.VolumeMounts[i].Name {
			v = vol
		}
	}
	switch {
	case v.PersistentVolumeClaim != nil:
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("the relay's claim %s with strategy %s: two pods would share the queue during a rollout", v.PersistentVolumeClaim.ClaimName, d.Spec.Strategy.Type)
		}
		claims := only(objects, "PersistentVolumeClaim")
		if len(claims) == 1 && claims[0].name != v.PersistentVolumeClaim.ClaimName {
			t.Errorf("the volume claims %s, the chart renders %s", v.PersistentVolumeClaim.ClaimName, claims[0].name)
		}
	case v.EmptyDir != nil:
	default:
		t.Errorf("the relay volume %s is neither a claim nor an emptyDir", v.Name)
	}
}

// checkSpread checks the pods spread across zones and hosts without ever
// blocking scheduling, by the chart's selector labels.
func checkSpread(t *testing.T, d appsv1.Deployment) {
	t.Helper()
	var keys []string
	for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
		keys = append(keys, c.TopologyKey)
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			t.Errorf("spread over %s: whenUnsatisfiable %s, want ScheduleAnyway", c.TopologyKey, c.WhenUnsatisfiable)
		}
		if c.LabelSelector == nil || !equalMaps(c.LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
			t.Errorf("spread over %s selects %v, want the Deployment's %v", c.TopologyKey, c.LabelSelector, d.Spec.Selector.MatchLabels)
		}
	}
	if !slices.Equal(keys, []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"}) {
		t.Errorf("spread over %v, want zones and hosts", keys)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// checkService checks that the Service's ports lead to container ports,
// and that it has the metrics port exactly when pushgate has the listener.
func checkService(t *testing.T, objects []object, ports map[string]int32) {
	t.Helper()
	var svc corev1.Service
	mustDecodeOne(t, objects, "Service", &svc)
	var names []string
	for _, p := range svc.Spec.Ports {
		names = append(names, p.Name)
		if _, ok := portName(p.TargetPort, ports); !ok {
			t.Errorf("Service port %s targets %s, no container port", p.Name, p.TargetPort.String())
		}
	}
	want := []string{"http"}
	if _, ok := ports["metrics"]; ok {
		want = append(want, "metrics")
	}
	if !slices.Equal(names, want) {
		t.Errorf("Service ports %v, want %v", names, want)
	}
}

// checkReplicas checks the cluster rules: more than one pod only with Redis,
// a secret and an upstream, and a PodDisruptionBudget exactly then.
func checkReplicas(t *testing.T, objects []object, d appsv1.Deployment, env map[string]corev1.EnvVar) {
	t.Helper()
	hpas := only(objects, "HorizontalPodAutoscaler")
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if len(hpas) > 0 {
		if d.Spec.Replicas != nil {
			t.Error("the Deployment sets replicas beside an HPA: every upgrade would reset the HPA's count")
		}
		replicas = 2 // an HPA scales out: a cluster
		var hpa autoscalingv2.HorizontalPodAutoscaler
		mustDecodeOne(t, objects, "HorizontalPodAutoscaler", &hpa)
		if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name {
			t.Errorf("the HPA scales %s %s, want Deployment %s", ref.Kind, ref.Name, d.Name)
		}
	}
	_, redis := env["PUSHGATE_REDIS_URL"]
	_, redisFile := env["PUSHGATE_REDIS_URL_FILE"]
	if redis || redisFile {
		_, secret := env["PUSHGATE_SECRET_FILE"]
		_, upstream := env["PUSHGATE_UPSTREAM"]
		if !secret || !upstream {
			t.Errorf("Redis without the secret (%v) or upstream (%v): pushgate refuses to start", secret, upstream)
		}
	} else if replicas > 1 {
		t.Errorf("%d replicas without Redis", replicas)
	}
	pdbs := only(objects, "PodDisruptionBudget")
	if (replicas > 1) != (len(pdbs) == 1) {
		t.Errorf("%d replicas, %d PodDisruptionBudgets", replicas, len(pdbs))
	}
	if len(pdbs) == 1 {
		var pdb policyv1.PodDisruptionBudget
		mustDecodeOne(t, objects, "PodDisruptionBudget", &pdb)
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
		}
	}
}
