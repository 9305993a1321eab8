package rediscluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/poller"
)

// ErrUnavailable is returned, at once, while Redis cannot be reached.
var ErrUnavailable = errors.New("rediscluster: redis unavailable")

// Config tunes a Node. The zero value of every field but URL and Secret
// selects its default.
type Config struct {
	// URL locates Redis, in one of the shapes Address describes: one
	// server, Sentinel, or with Cluster set a Redis Cluster. Required.
	URL string
	// Cluster takes URL as a Redis Cluster's seed nodes.
	Cluster bool
	// TLS sets up TLS beyond an rediss:// URL's defaults. Zero means
	// those: the system's roots and the host's name.
	TLS TLSFiles
	// Password is the servers' password, when URL carries none (see
	// Address.Password).
	Password string
	// Secret is the key material the session tokens stored in Redis are
	// sealed under (at least 16 bytes; the gateway's -secret). Every node
	// of a cluster needs the same one. Required.
	Secret []byte
	// PreviousSecret is the secret before the last rotation: tokens it
	// sealed still open, and none is sealed under it. Nil means none.
	PreviousSecret []byte
	// Prefix starts every key and the channel name, so that several
	// gateways can share one Redis. Zero means "pushgate".
	Prefix string
	// LeaseTTL is how long a poll lease outlives its last renewal: after a
	// node dies, another one takes its interviews over within it. Leases
	// are renewed every LeaseTTL/3. Zero means 3s.
	LeaseTTL time.Duration
	// Retention is how long an interview's shared state (status, history,
	// session token) is kept after its last change. Zero means 1h.
	Retention time.Duration
	// Timeout bounds each Redis command. Zero means 1s.
	Timeout time.Duration
	// Metrics registers the Node's Prometheus collectors. Nil records no
	// metrics.
	Metrics prometheus.Registerer
	// Logger receives Redis outages and recoveries. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Address is the Redis c names.
func (c Config) Address() Address {
	return Address{URL: c.URL, Cluster: c.Cluster, TLS: c.TLS, Password: c.Password}
}

func (c *Config) setDefaults() error {
	if c.URL == "" {
		return errors.New("rediscluster: URL is required")
	}
	if err := checkSecrets(c.Secret, c.PreviousSecret); err != nil {
		return err
	}
	if c.Prefix == "" {
		c.Prefix = "pushgate"
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 3 * time.Second
	}
	if c.Retention == 0 {
		c.Retention = time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LeaseTTL < 30*time.Millisecond || c.Retention < time.Second || c.Timeout < 0 {
		return errors.New("rediscluster: LeaseTTL must be at least 30ms, Retention at least 1s, Timeout not negative")
	}
	return nil
}

// Node is this gateway's membership of the cluster. Its methods are safe
// for concurrent use.
//
// Goroutines: the change listener, the lease renewer and the health check;
// all end with Close.
type Node struct {
	cfg     Config
	rdb     redis.UniversalClient
	id      string // this node's lease value
	channel string
	changes chan poller.Change
	metrics *metrics
	log     *slog.Logger
	sealer  *sealer // seals the session tokens stored in Redis

	unopened unopened // interviews whose stored token did not open, logged once

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	down   atomic.Bool  // Redis is out of reach: calls fail at once
	lastOK atomic.Int64 // when a health check last reached Redis, in Unix nanoseconds
	owed   atomic.Bool  // a Resync is owed to the Manager: a change was dropped
	mu     sync.Mutex   // protects held, cause and masters
	held   map[string]struct{}
	cause  error // why Redis is out of reach
	// masters are the run ids of the masters last reached, each with
	// whether it was promoted from a replica: a failover shows as a new
	// one (see recovered). Nil until Redis was first reached.
	masters map[string]bool
}

var _ poller.Cluster = (*Node)(nil)

// New connects to Redis and starts the Node's goroutines. Redis need not be
// reachable yet: the Node starts degraded and joins the cluster once it is.
// Close must be called.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	// One retry: a command cut by a failover is sent again to the new
	// master; a longer outage is answered by degrading, not by a loop.
	rdb, err := cfg.Address().NewClient(cfg.Timeout, 1)
	if err != nil {
		return nil, fmt.Errorf("rediscluster: Redis: %w", err)
	}
	sealer, err := newSealer(cfg.Secret, cfg.PreviousSecret)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:     cfg,
		rdb:     rdb,
		id:      host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(suffix),
		channel: cfg.Prefix + ":changes",
		changes: make(chan poller.Change, 4096),
		log:     cfg.Logger.With("component", "cluster"),
		sealer:  sealer,
		ctx:     ctx,
		cancel:  cancel,
		held:    make(map[string]struct{}),
	}
	if n.metrics, err = newMetrics(cfg.Metrics, n); err != nil {
		cancel()
		n.rdb.Close()
		return nil, err
	}
	pctx, pcancel := context.WithTimeout(ctx, cfg.Timeout)
	err = n.rdb.Ping(pctx).Err()
	pcancel()
	if why, bad := tlsProblem(err); err != nil && bad {
		// Not an outage that passes: the settings are wrong.
		cancel()
		n.rdb.Close()
		return nil, fmt.Errorf("rediscluster: TLS with Redis: %s", why)
	}
	if shapeErr := n.checkShape(ctx, err); shapeErr != nil {
		cancel()
		n.rdb.Close()
		return nil, shapeErr
	}
	if err != nil {
		n.fail(err)
	} else {
		n.lastOK.Store(time.Now().UnixNano())
		n.readMasters()
	}
	n.wg.Add(3)
	go n.listen()
	go n.renew()
	go n.check()
	return n, nil
}

// ID is the value this node writes into the leases it holds.
func (n *Node) ID() string { return n.id }

// Close gives up the leases this node holds, so that other nodes take its
// interviews over at once, and stops its goroutines. It returns within
// about two command timeouts whatever Redis and the other nodes do: one for
// the release, and one for the goroutines (changes flowing on the channel
// or Redis hanging hold none of them). It may be called more than once.
func (n *Node) Close() { n.closeOnce.Do(n.close) }

func (n *Node) close() {
	n.releaseAll()
	n.cancel()
	_ = n.rdb.Close() // cuts the commands the goroutines have in flight
	n.wg.Wait()
}

// releaseAll gives up every lease this node holds (see release).
func (n *Node) releaseAll() {
	n.mu.Lock()
	ids := make([]string, 0, len(n.held))
	for id := range n.held {
		ids = append(ids, id)
	}
	clear(n.held)
	n.mu.Unlock()
	n.release(ids)
}

// Degraded says why this node serves alone ("" when it does not): it is
// shown by /readyz.
func (n *Node) Degraded() string {
	if !n.down.Load() {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("redis out of reach, polling alone: %v", n.cause)
}

// Changes delivers the changes other nodes commit, and a Resync whenever
// some may have been missed: after the listener (re)subscribed, after a
// change was dropped because the Manager fell behind, and after Redis came
// back.
func (n *Node) Changes() <-chan poller.Change { return n.changes }

func (n *Node) key(interviewID, kind string) string {
	return n.cfg.Prefix + ":{" + interviewID + "}:" + kind // one hash slot per interview
}

// op returns a context bounded by the command timeout.
func (n *Node) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.cfg.Timeout)
}
