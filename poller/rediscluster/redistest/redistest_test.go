package redistest_test

import (
	"strings"
	"testing"

	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

func TestServerStopRestartPause(t *testing.T) {
	srv := redistest.Start(t)
	if !strings.HasPrefix(srv.URL(), "redis://127.0.0.1:") {
		t.Errorf("URL %q, want redis://127.0.0.1:<port>", srv.URL())
	}
	steps := []struct {
		args []string
		want string
		err  string
	}{
		{[]string{"SET", "k", "v"}, "OK", ""},
		{[]string{"GET", "k"}, "v", ""},
		{[]string{"GET", "missing"}, "", ""},
		{[]string{"RPUSH", "l", "a", "b"}, "2", ""},
		{[]string{"LRANGE", "l", "0", "-1"}, "a\nb", ""},
		{[]string{"INCR", "k"}, "", "redis: ERR value is not an integer"},
	}
	for _, s := range steps {
		got, err := srv.Do(s.args...)
		if got != s.want || (err == nil) != (s.err == "") || (err != nil && !strings.HasPrefix(err.Error(), s.err)) {
			t.Errorf("Do(%q) = %q, %v; want %q, %q", s.args, got, err, s.want, s.err)
		}
	}

	srv.Stop()
	if _, err := srv.Do("PING"); err == nil {
		t.Error("a stopped server answered PING")
	}
	addr := srv.Addr
	srv.Restart()
	if v, err := srv.Do("GET", "k"); err != nil || v != "" || srv.Addr != addr {
		t.Errorf("after Restart: GET k = %q, %v on %s; want empty on %s", v, err, srv.Addr, addr)
	}

	srv.Pause()
	if _, err := srv.Do("PING"); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("a paused server's PING: %v, want a timeout", err)
	}
	srv.Resume()
	if v, err := srv.Do("PING"); err != nil || v != "PONG" {
		t.Errorf("PING after Resume = %q, %v", v, err)
	}
}

func TestStartersSkipWithoutBinaries(t *testing.T) {
	starters := []struct {
		name  string
		start func(t *testing.T)
	}{
		{"Start", func(t *testing.T) { redistest.Start(t) }},
		{"StartSentinel", func(t *testing.T) { redistest.StartSentinel(t) }},
		{"StartCluster", func(t *testing.T) { redistest.StartCluster(t) }},
		{"StartTLS", func(t *testing.T) { redistest.StartTLS(t, true) }},
	}
	for _, s := range starters {
		var sub *testing.T
		t.Run(s.name, func(t *testing.T) {
			sub = t
			t.Setenv("PATH", t.TempDir())
			t.Setenv("CI", "")
			s.start(t)
			t.Error("started without redis-server on PATH")
		})
		if !sub.Skipped() {
			t.Errorf("%s did not skip without redis-server", s.name)
		}
	}
}
