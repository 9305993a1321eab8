package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway/tlstest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestPushgateStartsWithTheChartsEnvironment runs the binary with each
// scenario's environment, as the pod would (listen addresses on free
// loopback ports, the Secret's files and the relay directory in a temporary
// directory, a fake upstream, a Redis that is down), and checks that it
// starts, answers its probes where the Deployment's probes ask, drains on
// SIGTERM (/readyz 503, /healthz 200) and exits within
// terminationGracePeriodSeconds. Beyond the defaults, the drain delay is
// cut to 1 s to keep the test short (the subtests run two at a time on two
// cores); the exit is still held to the rendered grace period.
func TestPushgateStartsWithTheChartsEnvironment(t *testing.T) {
	bin := pushgateBinary(t)
	// The upstream refuses the readiness probe's token-less call with 401,
	// as Incode does: it answers.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"missing token"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(upstream.Close) // after the parallel subtests, unlike a defer
	for _, s := range scenarios {
		if s.name == "every secret" {
			continue // every secret flag at once is no configuration pushgate takes
		}
		t.Run(s.name, func(t *testing.T) {
			var d appsv1.Deployment
			mustDecodeOne(t, render(t, s), "Deployment", &d)
			t.Parallel()
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			dir := t.TempDir()
			env, ports := localEnv(t, c, dir, upstream.URL)
			drain, _ := time.ParseDuration(envValue(c, "PUSHGATE_DRAIN_DELAY"))
			if s.name != "defaults" && drain > time.Second {
				drain = time.Second
				env = append(env, "PUSHGATE_DRAIN_DELAY=1s") // the last one wins
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.Args...)
			cmd.Env = env
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			probeURL := func(p *corev1.Probe) string {
				g := p.HTTPGet
				return fmt.Sprintf("%s://127.0.0.1:%d%s", strings.ToLower(string(g.Scheme)), ports[g.Port.StrVal], g.Path)
			}
			live, ready := probeURL(c.LivenessProbe), probeURL(c.ReadinessProbe)
			if err := waitStatus(client, ready, http.StatusOK, 10*time.Second, exited); err != nil {
				t.Fatalf("readiness %s: %v\n%s", ready, err, tail(out.String()))
			}
			if code, err := get(client, live); code != http.StatusOK {
				t.Fatalf("liveness %s: %d %v", live, code, err)
			}

			began := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if drain >= time.Second {
				if err := waitStatus(client, ready, http.StatusServiceUnavailable, drain/2, exited); err != nil {
					t.Errorf("readiness while draining: %v", err)
				}
				if code, err := get(client, live); code != http.StatusOK {
					t.Errorf("liveness while draining: %d %v", code, err)
				}
			}
			limit := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("pushgate exited with %v after SIGTERM\n%s", err, tail(out.String()))
				}
				t.Logf("exited %v after SIGTERM (drain %v, terminationGracePeriodSeconds %v)", time.Since(began).Round(10*time.Millisecond), drain, limit)
			case <-time.After(limit):
				t.Errorf("pushgate still runs %v after SIGTERM: Kubernetes would kill it\n%s", limit, tail(out.String()))
			}
		})
	}
}

// localEnv is the container's environment made to run here, and the local
// port of each container port.
func localEnv(t *testing.T, c corev1.Container, dir, upstreamURL string) ([]string, map[string]int) {
	t.Helper()
	ports := map[string]int{}
	env := []string{"PATH=/usr/bin:/bin", "PUSHGATE_SIM_ADDR=127.0.0.1:" + strconv.Itoa(freePort(t))}
	for _, e := range c.Env {
		v := e.Value
		switch name := e.Name; {
		case name == "PUSHGATE_ADDR" || name == "PUSHGATE_METRICS_ADDR":
			p := freePort(t)
			ports[map[string]string{"PUSHGATE_ADDR": "http", "PUSHGATE_METRICS_ADDR": "metrics"}[name]] = p
			v = "127.0.0.1:" + strconv.Itoa(p)
		case name == "PUSHGATE_SIM_ADDR":
			v = "127.0.0.1:" + strconv.Itoa(freePort(t))
		case name == "PUSHGATE_UPSTREAM":
			v = upstreamURL
		case name == "PUSHGATE_REDIS_URL":
			v = "redis://127.0.0.1:" + strconv.Itoa(freePort(t)) // nothing listens: Redis is down
		case name == "PUSHGATE_RELAY_DIR":
			v = filepath.Join(dir, "relay")
		case name == "PUSHGATE_TLS_CERT" || name == "PUSHGATE_TLS_KEY":
			v = filepath.Join(dir, path.Base(v))
			writeCertificate(t, dir)
		case strings.HasSuffix(name, "_FILE"):
			v = filepath.Join(dir, path.Base(v))
			if err := os.WriteFile(v, []byte(secretFor(t, path.Base(e.Value))+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	return env, ports
}

// secretFor is a value of the shape each secret flag takes.
func secretFor(t *testing.T, flag string) string {
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	switch flag {
	case "secret", "api-token", "sim-control-token", "admin-token", "admin-password", "previous-secret":
		return hex.EncodeToString(random(16))
	case "api-key":
		return "test-api-key"
	case "webhook-secret", "webhook-client-secret":
		return hex.EncodeToString(random(32))
	case "webhook-header":
		return "X-Incode-Hook: " + hex.EncodeToString(random(32))
	case "relay-secret":
		return "whsec_" + base64.StdEncoding.EncodeToString(random(32))
	case "redis-url":
		return "redis://127.0.0.1:" + strconv.Itoa(freePort(t))
	case "redis-password":
		return hex.EncodeToString(random(16))
	}
	t.Fatalf("no test value for the secret flag -%s", flag)
	return ""
}

var certOnce sync.Map // dir -> struct{}

// writeCertificate writes a self-signed tls.crt and tls.key into dir, as a
// kubernetes.io/tls Secret holds them.
func writeCertificate(t *testing.T, dir string) {
	t.Helper()
	if _, done := certOnce.LoadOrStore(dir, struct{}{}); done {
		return
	}
	pair := tlstest.NewPair(t, 1)
	tlstest.WriteFile(t, filepath.Join(dir, "tls.crt"), pair.CertPEM)
	tlstest.WriteFile(t, filepath.Join(dir, "tls.key"), pair.KeyPEM)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func get(client *http.Client, url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitStatus polls url until it answers want, the process exits, or
// within passes.
func waitStatus(client *http.Client, url string, want int, within time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(within)
	var code int
	var err error
	for time.Now().Before(deadline) {
		if code, err = get(client, url); code == want {
			return nil
		}
		select {
		case e := <-exited:
			return fmt.Errorf("pushgate exited (%v) before %s answered %d", e, url, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no %d within %v (last: %d %v)", want, within, code, err)
}

// syncBuffer is a bytes.Buffer a process writes to while the test reads.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
