package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Relay. The zero value of every field but URLs and
// Secrets selects its default.
type Config struct {
	// URLs receive every event, each on its own: one that is down holds no
	// other back. Each is an absolute http or https URL. Required.
	URLs []string
	// Secrets sign every event, whsec_ and the base64 of a key of at
	// least MinKeyLen bytes; during a rotation both, so each event carries
	// one signature per secret. Required.
	Secrets []string
	// Kinds are the kinds of events sent (KindUpstream, KindStatus,
	// KindEnded). Empty means all of them.
	Kinds []string
	// Queue keeps the deliveries. Nil means a queue of this node alone:
	// on disk in Dir when it is set, else in memory (lost at a restart).
	Queue Queue
	// Dir holds the queue's bbolt file, when Queue is nil.
	Dir string
	// MaxQueue caps the deliveries the node-local queue keeps waiting;
	// past it new events are dropped, counted and logged. Zero means
	// 100,000.
	MaxQueue int
	// MaxQueueBytes caps what the node-local queue's deliveries weigh in
	// memory (a body, and 512 bytes for the rest, each; the queue on disk
	// is held in memory too); past it, as past MaxQueue. Zero means 256 MiB.
	MaxQueueBytes int64
	// Timeout cuts each attempt. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxAge is how long a delivery is retried after its event was made;
	// then it fails. Zero means 24h.
	MaxAge time.Duration
	// BackoffMin and BackoffMax bound the wait between two attempts: it
	// doubles from BackoffMin with every failed attempt up to BackoffMax,
	// the upper half random (a longer Retry-After wins). Zero means 1s and
	// 5m.
	BackoffMin, BackoffMax time.Duration
	// Workers is how many deliveries this node makes at once. Zero means 16.
	Workers int
	// Poll is how often the workers look for due deliveries when nothing
	// woke them: retries come due, and another node may have left a lane.
	// Zero means 250ms.
	Poll time.Duration
	// Scorer reads the verdict a session.ended of a finished flow carries.
	// Nil sends those with a null verdict.
	Scorer Scorer
	// Metrics registers the Relay's Prometheus collectors. Nil records no
	// metrics.
	Metrics prometheus.Registerer
	// Logger receives failed deliveries and drops. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultTimeout is the time a target has to answer one attempt, when
// Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Scorer reads an interview's verdict (OK, WARN, FAIL) once its flow
// finished. An error is retried, as a failed delivery is; a verdict of ""
// with no error (the upstream does not give one) is sent as null.
type Scorer interface {
	Verdict(ctx context.Context, interviewID string) (string, error)
}

func (c *Config) setDefaults() error {
	if len(c.URLs) == 0 {
		return errors.New("relay: a target URL is required")
	}
	for _, u := range c.URLs {
		if err := CheckURL(u); err != nil {
			return err
		}
	}
	if len(c.Kinds) == 0 {
		c.Kinds = Kinds
	}
	for _, k := range c.Kinds {
		if !slices.Contains(Kinds, k) {
			return fmt.Errorf("relay: kind %q: want %s, %s or %s", k, KindUpstream, KindStatus, KindEnded)
		}
	}
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&c.Timeout, DefaultTimeout}, {&c.MaxAge, 24 * time.Hour}, {&c.BackoffMin, time.Second},
		{&c.BackoffMax, 5 * time.Minute}, {&c.Poll, 250 * time.Millisecond},
	} {
		if *d.field < 0 {
			return errors.New("relay: durations must not be negative")
		}
		if *d.field == 0 {
			*d.field = d.def
		}
	}
	if c.BackoffMax < c.BackoffMin {
		return errors.New("relay: BackoffMax is below BackoffMin")
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 100_000
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = 256 << 20
	}
	if c.Workers == 0 {
		c.Workers = 16
	}
	if c.MaxQueue < 0 || c.MaxQueueBytes < 0 || c.Workers < 0 {
		return errors.New("relay: MaxQueue, MaxQueueBytes and Workers must not be negative")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// CheckURL reports what is wrong with a target URL: it must be an
// absolute http or https URL, with no user or fragment.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("relay: target URL %q: %w", raw, err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("relay: target URL %q: want an absolute http:// or https:// URL", raw)
	case u.User != nil:
		return fmt.Errorf("relay: target URL %q: credentials in the URL would be logged; use the signature to authenticate", u.Redacted())
	case u.Fragment != "":
		return fmt.Errorf("relay: target URL %q: a fragment is never sent", raw)
	}
	return nil
}

// Relay delivers events to the target URLs. Its methods are safe for
// concurrent use.
//
// Goroutines: one dispatcher, which claims due deliveries and starts one
// goroutine per delivery in flight (at most Workers); all end with Close.
type Relay struct {
	cfg     Config
	queue   Queue
	signer  *signer
	client  *http.Client
	kinds   map[string]bool
	metrics *metrics
	ctx     context.Context // ends with Close: cuts attempts in flight
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{} // a delivery may be due now

	// addMu is held by an add that goes to the queue itself: such adds
	// reach it one at a time, in the order they were made.
	addMu sync.Mutex
	qmu   sync.Mutex // protects spill
	spill []Delivery // taken while the queue was out of reach, oldest first

	mu        sync.Mutex        // protects external, droppedAt
	external  map[string]string // externalId by interview, when known
	droppedAt time.Time         // last log of a drop
}

// maxSpill caps the deliveries kept in memory while the queue is out of
// reach (Redis down); maxExternal the external ids remembered.
const (
	maxSpill    = 10_000
	maxExternal = 100_000
)

// New returns a Relay delivering from cfg.Queue (or a queue of its own).
// Close must be called to stop its goroutines and close its queue.
func New(cfg Config) (*Relay, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	sg, err := newSigner(cfg.Secrets)
	if err != nil {
		return nil, err
	}
	q := cfg.Queue
	if q == nil {
		var st store
		if cfg.Dir != "" {
			if st, err = openBolt(cfg.Dir); err != nil {
				return nil, err
			}
		}
		if q, err = newLocalQueue(cfg.MaxQueue, cfg.MaxQueueBytes, st); err != nil {
			if st != nil {
				st.close()
			}
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		cfg: cfg, queue: q, signer: sg, client: newClient(cfg.Timeout), kinds: map[string]bool{},
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), external: map[string]string{},
	}
	for _, k := range cfg.Kinds {
		r.kinds[k] = true
	}
	if r.metrics, err = newMetrics(cfg.Metrics, r); err != nil {
		cancel()
		q.Close()
		return nil, err
	}
	r.wg.Add(1)
	go r.dispatch()
	return r, nil
}

// Close stops the deliveries (those in flight are cut, and tried again
// later, by this node after a restart or by another one) and closes the
// queue.
func (r *Relay) Close() error {
	r.cancel()
	r.wg.Wait()
	r.client.CloseIdleConnections()
	r.unspill() // a last try: the events still in memory are lost at exit
	r.qmu.Lock()
	lost := r.spill
	r.spill = nil
	r.qmu.Unlock()
	if len(lost) > 0 {
		r.metrics.count(lost, "dropped")
		r.cfg.Logger.Error("relay: events never reached the queue, which stayed out of reach; they are lost (counted as dropped)", "events", len(lost))
	}
	return r.queue.Close()
}

// Failed lists the failed deliveries, newest first, limit at most.
func (r *Relay) Failed(ctx context.Context, limit int) ([]Delivery, error) {
	return r.queue.Failed(ctx, limit)
}

// Redeliver sends the failed deliveries of the event id again, behind
// what their lanes hold now, and returns them.
func (r *Relay) Redeliver(ctx context.Context, id string) ([]Delivery, error) {
	ds, err := r.queue.Redeliver(ctx, id)
	if len(ds) > 0 {
		r.metrics.count(ds, "redelivered")
		r.poke()
	}
	return ds, err
}
