package redistest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

func TestSentinelURLParses(t *testing.T) {
	sn := &redistest.Sentinel{Sentinels: []*redistest.Server{
		{Addr: "127.0.0.1:26379"}, {Addr: "127.0.0.1:26380"}, {Addr: "127.0.0.1:26381"},
	}}
	u := sn.URL(3)
	opts, err := redis.ParseFailoverURL(u)
	if err != nil {
		t.Fatalf("ParseFailoverURL(%q): %v", u, err)
	}
	want := []string{"127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"}
	if opts.MasterName != redistest.MasterName || opts.DB != 3 || !slices.Equal(opts.SentinelAddrs, want) {
		t.Errorf("ParseFailoverURL(%q) = master %q, db %d, sentinels %v; want %q, 3, %v",
			u, opts.MasterName, opts.DB, opts.SentinelAddrs, redistest.MasterName, want)
	}
}

func TestClusterURLParses(t *testing.T) {
	c := &redistest.Cluster{Nodes: []*redistest.Server{
		{Addr: "127.0.0.1:7000"}, {Addr: "127.0.0.1:7001"}, {Addr: "127.0.0.1:7002"},
		{Addr: "127.0.0.1:7003"}, {Addr: "127.0.0.1:7004"}, {Addr: "127.0.0.1:7005"},
	}}
	u := c.URL()
	opts, err := redis.ParseClusterURL(u)
	if err != nil {
		t.Fatalf("ParseClusterURL(%q): %v", u, err)
	}
	if want := []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}; !slices.Equal(opts.Addrs, want) {
		t.Errorf("ParseClusterURL(%q) seeds = %v, want %v", u, opts.Addrs, want)
	}
}

// eventually retries f until it succeeds or ctx ends, and returns the
// number of attempts.
func eventually(t *testing.T, ctx context.Context, what string, f func() error) int {
	t.Helper()
	for n := 1; ; n++ {
		err := f()
		if err == nil {
			return n
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: still failing after %d attempts: %v", what, n, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a Sentinel failover takes seconds")
	}
	t.Parallel() // a topology of its own
	sn := redistest.StartSentinel(t)
	opts, err := redis.ParseFailoverURL(sn.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewFailoverClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := client.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Wait(ctx, 1, 2*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want the replica to have the write", n, err)
	}

	old, killed := sn.KillMaster()
	if old != sn.Data[0].Addr {
		t.Fatalf("the master was %s, want the server started as master, %s", old, sn.Data[0].Addr)
	}
	addr, promoted := sn.WaitPromoted(old, 30*time.Second)
	if addr != sn.Data[1].Addr {
		t.Fatalf("promoted %s, want the replica %s", addr, sn.Data[1].Addr)
	}
	t.Logf("sentinels promoted %s %v after %s was killed", addr, promoted.Sub(killed).Round(time.Millisecond), old)

	tries := eventually(t, ctx, "write after the failover", func() error {
		return client.Set(ctx, "after", "2", 0).Err()
	})
	t.Logf("the client wrote again %v after the promotion (%d attempts)", time.Since(promoted).Round(time.Millisecond), tries)
	if v, err := client.Get(ctx, "before").Result(); err != nil || v != "1" {
		t.Errorf("GET before = %q, %v; want the write acknowledged by the replica", v, err)
	}
	if v, err := sn.Data[1].Do("GET", "after"); err != nil || v != "2" {
		t.Errorf("the new master holds after = %q, %v; want 2", v, err)
	}
}

func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster failover takes seconds")
	}
	t.Parallel() // a topology of its own
	c := redistest.StartCluster(t)
	if m := c.Masters(); len(m) != 3 {
		t.Fatalf("masters %v, want 3", m)
	}
	opts, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	// go-redis reloads its slot map on MOVED or ASK, or once it is
	// ClusterStateReloadInterval old (60 s by default). A killed master
	// refuses connections and answers neither, so without a short interval
	// its slots stay unreachable for up to a minute after the failover.
	opts.ClusterStateReloadInterval = time.Second
	client := redis.NewClusterClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const keys = 100
	owner := map[string]string{} // acknowledged key -> master address
	for i := range keys {
		k := fmt.Sprintf("key:%d", i)
		if err := client.Set(ctx, k, k, 0).Err(); err == nil {
			owner[k] = c.MasterOf(k)
		}
	}
	if len(owner) != keys {
		t.Fatalf("%d of %d writes acknowledged before the failover", len(owner), keys)
	}

	victim := c.MasterOf("key:0")
	killed := c.KillMaster(victim)
	at := c.WaitFailover(victim, 30*time.Second)
	t.Logf("the cluster failed over %v after %s was killed", at.Sub(killed).Round(time.Millisecond), victim)
	if m := c.Masters(); len(m) != 3 || slices.Contains(m, victim) {
		t.Errorf("masters after the failover %v, want 3 without %s", m, victim)
	}

	tries := eventually(t, ctx, "GET key:0 after the failover", func() error {
		return client.Get(ctx, "key:0").Err()
	})
	t.Logf("the client read %s's slots again %v after the failover (%d attempts)",
		victim, time.Since(at).Round(time.Millisecond), tries)
	lost := 0
	for k, was := range owner {
		var v string
		eventually(t, ctx, "GET "+k, func() error {
			var err error
			v, err = client.Get(ctx, k).Result()
			if errors.Is(err, redis.Nil) {
				return nil
			}
			return err
		})
		switch {
		case v == k:
		case v == "" && was == victim:
			lost++
		default:
			t.Errorf("GET %s (on %s before) = %q, want %q", k, was, v, k)
		}
	}
	t.Logf("%d of %d acknowledged keys lost with %s (replication is asynchronous)", lost, len(owner), victim)
	eventually(t, ctx, "write to the promoted replica", func() error {
		return client.Set(ctx, "key:0", "again", 0).Err()
	})
}

func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	t.Parallel() // a topology of its own
	for _, clientCerts := range []bool{false, true} {
		t.Run(fmt.Sprintf("clientCerts=%v", clientCerts), func(t *testing.T) {
			srv := redistest.StartTLS(t, clientCerts)
			if !strings.HasPrefix(srv.URL(), "rediss://127.0.0.1:") {
				t.Errorf("URL %q, want rediss://127.0.0.1:<port>", srv.URL())
			}
			ping := func(caFile string, withCert bool, serverName string) error {
				opts, err := redis.ParseURL(srv.URL())
				if err != nil {
					t.Fatal(err)
				}
				opts.TLSConfig.RootCAs = pool(t, caFile)
				if serverName != "" {
					opts.TLSConfig.ServerName = serverName
				}
				if withCert {
					cert, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
					if err != nil {
						t.Fatal(err)
					}
					opts.TLSConfig.Certificates = []tls.Certificate{cert}
				}
				opts.MaxRetries = -1
				opts.DialerRetries = 1
				client := redis.NewClient(opts)
				defer client.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return client.Ping(ctx).Err()
			}

			if err := ping(srv.CAFile, clientCerts, ""); err != nil {
				t.Errorf("PING with the right CA: %v", err)
			}
			if err := ping(srv.CAFile, clientCerts, redistest.ServerName); err != nil {
				t.Errorf("PING with the right CA to %s: %v", redistest.ServerName, err)
			}
			err := ping(srv.OtherCAFile, clientCerts, "")
			if !errors.As(err, new(x509.UnknownAuthorityError)) {
				t.Errorf("PING trusting another CA: %v, want x509: certificate signed by unknown authority", err)
			}
			err = ping(srv.CAFile, false, "")
			switch {
			case clientCerts && (err == nil || !strings.Contains(err.Error(), "remote error: tls: certificate required")):
				t.Errorf("PING without a client certificate: %v, want the server's alert: certificate required", err)
			case !clientCerts && err != nil:
				t.Errorf("PING without a client certificate, none asked: %v", err)
			}
			if v, err := srv.Do("PING"); err != nil || v != "PONG" {
				t.Errorf("Do(PING) = %q, %v", v, err)
			}
		})
	}
}

func pool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return p
}
