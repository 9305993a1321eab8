package rediscluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/pushgate/pushgate/poller"
)

// ErrUnavailable is returned, at once, while Redis cannot be reached.
var ErrUnavailable = errors.New("rediscluster: redis unavailable")

// historyLen is how many changes per interview Redis keeps, as many as a
// Manager remembers: enough for any reconnecting client to catch up.
const historyLen = 16

// Config tunes a Node. The zero value of every field but URL selects its
// default.
type Config struct {
	// URL locates Redis: redis://[user:password@]host:port[/db], or
	// rediss:// for TLS. Required.
	URL string
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

func (c *Config) setDefaults() error {
	if c.URL == "" {
		return errors.New("rediscluster: URL is required")
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
	rdb     *redis.Client
	id      string // this node's lease value
	channel string
	changes chan poller.Change
	metrics *metrics
	log     *slog.Logger

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	down  atomic.Bool // Redis is out of reach: calls fail at once
	owed  atomic.Bool // a Resync is owed to the Manager: a change was dropped
	mu    sync.Mutex  // protects held and cause
	held  map[string]struct{}
	cause error // why Redis is out of reach
}

var _ poller.Cluster = (*Node)(nil)

// New connects to Redis and starts the Node's goroutines. Redis need not be
// reachable yet: the Node starts degraded and joins the cluster once it is.
// Close must be called.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("rediscluster: URL: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout
	opt.MaxRetries = 1 // a failover, not a retry loop, answers an outage
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:     cfg,
		rdb:     redis.NewClient(opt),
		id:      host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(suffix),
		channel: cfg.Prefix + ":changes",
		changes: make(chan poller.Change, 4096),
		log:     cfg.Logger.With("component", "cluster"),
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
	if err := n.rdb.Ping(pctx).Err(); err != nil {
		n.fail(err)
	}
	pcancel()
	n.wg.Add(3)
	go n.listen()
	go n.renew()
	go n.check()
	return n, nil
}

// ID is the value this node writes into the leases it holds.
func (n *Node) ID() string { return n.id }

// Close gives up the leases this node holds, so that other nodes take its
// interviews over at once, and stops its goroutines. It may be called more
// than once.
func (n *Node) Close() { n.closeOnce.Do(n.close) }

func (n *Node) close() {
	n.mu.Lock()
	ids := make([]string, 0, len(n.held))
	for id := range n.held {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		n.Release(id)
	}
	n.cancel()
	n.wg.Wait()
	_ = n.rdb.Close()
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

// leadScript takes the lease when free, renews it when held, and otherwise
// answers its remaining time in ms (-1: ours now).
var leadScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return -1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then return 1 end
return ttl`)

// renewScript extends the lease only while this node holds it (1), and
// answers 0 once another node has it.
const renewScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

// releaseScript deletes the lease only while this node holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Lead takes or confirms this node's lease of the interview. A lease taken
// is renewed in the background until Release.
func (n *Node) Lead(ctx context.Context, interviewID string) (time.Duration, error) {
	if n.down.Load() {
		return 0, ErrUnavailable
	}
	n.mu.Lock()
	_, ours := n.held[interviewID]
	n.mu.Unlock()
	if ours {
		return 0, nil
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	ms, err := leadScript.Run(ctx, n.rdb, []string{n.key(interviewID, "lease")}, n.id, n.cfg.LeaseTTL.Milliseconds()).Int64()
	if err != nil {
		n.fail(err)
		return 0, err
	}
	if ms >= 0 {
		return time.Duration(ms) * time.Millisecond, nil
	}
	n.mu.Lock()
	n.held[interviewID] = struct{}{}
	n.mu.Unlock()
	n.metrics.lease("acquired")
	return 0, nil
}

// Release gives the lease up if this node holds it.
func (n *Node) Release(interviewID string) {
	n.mu.Lock()
	_, ours := n.held[interviewID]
	delete(n.held, interviewID)
	n.mu.Unlock()
	if !ours || n.down.Load() {
		return
	}
	n.metrics.lease("released")
	ctx, cancel := n.op(context.Background()) // also during Close
	defer cancel()
	if err := releaseScript.Run(ctx, n.rdb, []string{n.key(interviewID, "lease")}, n.id).Err(); err != nil {
		n.fail(err) // the lease expires by itself
	}
}

// commitScript stores a change on top of prev, the last change the caller
// knows is stored (the history's tail, which the conflict answer shows), keeps the last changes, and publishes it; it answers 1,
// or the stored changes when the stored last one is another (the caller
// missed some, or numbered its own while Redis was out of reach). With no
// history left (expired, or a Redis that restarted empty) nothing counts as
// stored.
//
// KEYS: state, history. ARGV: prev, seq, history entry, pushed (0/1), now
// in ms, retention in ms, channel, message, history length.
var commitScript = redis.NewScript(`
local last = redis.call('LINDEX', KEYS[2], -1)
if last and tonumber(cjson.decode(last).q) ~= tonumber(ARGV[1]) then
  return redis.call('LRANGE', KEYS[2], 0, -1)
end
redis.call('HSET', KEYS[1], 'seq', ARGV[2])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'pushed', ARGV[5]) end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[9]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1`)

// entry is one change in the history list.
type entry struct {
	Status string `json:"s"`
	Seq    uint64 `json:"q"`
}

// message is one change on the channel.
type message struct {
	Node   string `json:"n"`
	ID     string `json:"i"`
	Status string `json:"s"`
	Seq    uint64 `json:"q"`
	Prev   uint64 `json:"p,omitempty"`
	Pushed bool   `json:"w,omitempty"`
}

// Commit stores next on top of prev, and publishes it.
func (n *Node) Commit(ctx context.Context, prev uint64, next poller.Update, pushed bool) ([]poller.Update, error) {
	if n.down.Load() {
		return nil, ErrUnavailable
	}
	e, _ := json.Marshal(entry{Status: next.Status, Seq: next.Seq})
	msg, _ := json.Marshal(message{Node: n.id, ID: next.InterviewID, Status: next.Status, Seq: next.Seq, Prev: prev, Pushed: pushed})
	flag := "0"
	if pushed {
		flag = "1"
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	keys := []string{n.key(next.InterviewID, "state"), n.key(next.InterviewID, "history")}
	res, err := commitScript.Run(ctx, n.rdb, keys, prev, next.Seq, e, flag, time.Now().UnixMilli(),
		n.cfg.Retention.Milliseconds(), n.channel, msg, historyLen).Result()
	if err != nil {
		n.fail(err)
		n.metrics.commit("failed")
		return nil, err
	}
	list, ok := res.([]any)
	if !ok {
		n.metrics.commit("stored")
		return nil, nil
	}
	n.metrics.commit("conflict")
	stored := decodeHistory(next.InterviewID, list)
	if len(stored) == 0 {
		return nil, fmt.Errorf("rediscluster: interview %s: a change is stored but its history cannot be read", next.InterviewID)
	}
	return stored, nil
}

// Load reads the interview's shared state.
func (n *Node) Load(ctx context.Context, interviewID string) (poller.Shared, error) {
	if n.down.Load() {
		return poller.Shared{}, ErrUnavailable
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	pipe := n.rdb.Pipeline()
	fields := pipe.HMGet(ctx, n.key(interviewID, "state"), "token", "pushed")
	history := pipe.LRange(ctx, n.key(interviewID, "history"), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		n.fail(err)
		return poller.Shared{}, err
	}
	var sh poller.Shared
	vals := fields.Val()
	if len(vals) == 2 {
		sh.Token, _ = vals[0].(string)
		if ms, err := strconv.ParseInt(fmt.Sprint(vals[1]), 10, 64); err == nil {
			sh.PushedAt = time.UnixMilli(ms)
		}
	}
	items := make([]any, len(history.Val()))
	for i, s := range history.Val() {
		items[i] = s
	}
	sh.History = decodeHistory(interviewID, items)
	return sh, nil
}

// Share stores the interview's upstream session token.
func (n *Node) Share(ctx context.Context, interviewID, sessionToken string) error {
	if n.down.Load() {
		return ErrUnavailable
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	key := n.key(interviewID, "state")
	pipe := n.rdb.TxPipeline()
	pipe.HSet(ctx, key, "token", sessionToken)
	pipe.PExpire(ctx, key, n.cfg.Retention)
	pipe.PExpire(ctx, n.key(interviewID, "history"), n.cfg.Retention) // the two expire together
	if _, err := pipe.Exec(ctx); err != nil {
		n.fail(err)
		return err
	}
	return nil
}

// decodeHistory reads history entries, skipping any it cannot parse.
func decodeHistory(interviewID string, items []any) []poller.Update {
	out := make([]poller.Update, 0, len(items))
	for _, it := range items {
		s, _ := it.(string)
		var e entry
		if json.Unmarshal([]byte(s), &e) != nil || e.Seq == 0 {
			continue
		}
		out = append(out, poller.Update{InterviewID: interviewID, Status: e.Status, Seq: e.Seq})
	}
	return out
}

// fail records a failed command. An empty answer (redis.Nil), a caller
// giving up and an error reply about the command itself do not count;
// anything else (no connection, a timeout, a Redis that cannot take
// writes) marks Redis out of reach until the health check, which writes,
// succeeds again.
func (n *Node) fail(err error) {
	var reply redis.Error
	if errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) || (errors.As(err, &reply) && !unwritable(reply)) {
		return
	}
	n.mu.Lock()
	n.cause = err
	n.mu.Unlock()
	if n.down.CompareAndSwap(false, true) {
		n.log.Warn("redis out of reach; polling alone until it is back", "err", err)
	}
}

// check runs in its own goroutine: it writes a short-lived key, every
// second while Redis takes it and four times a second while it does not,
// and announces its return with a Resync. A write, not a PING, so that a
// Redis that answers but cannot store (a replica, out of memory) counts as
// out of reach.
func (n *Node) check() {
	defer n.wg.Done()
	for {
		every := time.Second
		if n.down.Load() {
			every = 250 * time.Millisecond
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(every):
		}
		ctx, cancel := n.op(n.ctx)
		err := n.rdb.Set(ctx, n.cfg.Prefix+":health:"+n.id, "1", 10*time.Second).Err()
		cancel()
		switch {
		case err != nil:
			n.fail(err)
		case n.down.CompareAndSwap(true, false):
			// Leases held before the outage may be gone (a restarted
			// Redis) or taken: the next Lead of each asks Redis again.
			n.mu.Lock()
			clear(n.held)
			n.mu.Unlock()
			n.log.Info("redis reachable again; back in cluster mode")
			n.owed.Store(true)
			n.payResync()
		}
	}
}

// renew runs in its own goroutine and extends the held leases every
// LeaseTTL/3, in one pipeline; a lease another node took meanwhile is
// dropped.
func (n *Node) renew() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.down.Load() {
			continue
		}
		n.mu.Lock()
		ids := make([]string, 0, len(n.held))
		for id := range n.held {
			ids = append(ids, id)
		}
		n.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := n.op(n.ctx)
		pipe := n.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.Eval(ctx, renewScript, []string{n.key(id, "lease")}, n.id, n.cfg.LeaseTTL.Milliseconds())
		}
		_, err := pipe.Exec(ctx)
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			n.fail(err)
			continue
		}
		for i, c := range cmds {
			if v, err := c.Int64(); err == nil && v == 0 {
				n.mu.Lock()
				delete(n.held, ids[i])
				n.mu.Unlock()
				n.metrics.lease("lost")
			}
		}
	}
}

// listen runs in its own goroutine: it subscribes to the change channel
// and resubscribes after any failure, with a Resync each time.
func (n *Node) listen() {
	defer n.wg.Done()
	for n.ctx.Err() == nil {
		n.listenOnce()
		select {
		case <-n.ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// listenOnce reads the channel until its connection fails or goes quiet: a
// ping unanswered for two timeouts means a dead connection.
func (n *Node) listenOnce() {
	ps := n.rdb.Subscribe(n.ctx, n.channel)
	defer ps.Close()
	quiet := max(n.cfg.Timeout, time.Second)
	pinged := false
	for {
		v, err := ps.ReceiveTimeout(n.ctx, quiet)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && n.ctx.Err() == nil {
				pinged = ps.Ping(n.ctx) == nil
				if pinged {
					continue
				}
			}
			return
		}
		pinged = false
		switch m := v.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				n.owed.Store(true) // changes published before now were not heard
			}
		case *redis.Message:
			n.deliver(m.Payload)
		}
		n.payResync()
	}
}

// deliver hands one change to the Manager without blocking; when the
// Manager is behind, the change is dropped and a Resync owed.
func (n *Node) deliver(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil || m.ID == "" || m.Seq == 0 {
		n.log.Warn("ignoring a malformed change on the channel", "err", err)
		return
	}
	if m.Node == n.id {
		return // committed here; the Manager has it
	}
	c := poller.Change{Update: poller.Update{InterviewID: m.ID, Status: m.Status, Seq: m.Seq}, Prev: m.Prev, Pushed: m.Pushed}
	select {
	case n.changes <- c:
		n.metrics.feed("received")
	default:
		n.metrics.feed("dropped")
		n.owed.Store(true)
	}
}

// payResync sends an owed Resync if the Manager has room for it, and Redis
// can be reached to reload from: otherwise the health check pays it once
// Redis is back.
func (n *Node) payResync() {
	if !n.owed.Load() || n.down.Load() {
		return
	}
	select {
	case n.changes <- poller.Change{Resync: true}:
		n.owed.Store(false)
		n.metrics.feed("resync")
	default:
	}
}

// unwritable reports whether an error reply means Redis cannot take the
// commands pushgate sends at all, rather than one command was wrong.
func unwritable(reply redis.Error) bool {
	for _, prefix := range []string{"READONLY", "MISCONF", "OOM", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY", "NOAUTH", "WRONGPASS", "NOPERM"} {
		if strings.HasPrefix(reply.Error(), prefix) {
			return true
		}
	}
	return false
}

func (n *Node) heldCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.held)
}
