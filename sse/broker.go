package sse

import (
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	r3 "github.com/r3labs/sse/v2"

	"github.com/pushgate/pushgate/poller/flow"
)

// Errors of join: the caps on open streams, and shutdown.
var (
	errDraining       = errors.New("sse: shutting down")
	errInterviewLimit = errors.New("sse: too many open streams for this interview")
	errClientLimit    = errors.New("sse: too many open streams from this client")
	errStreamLimit    = errors.New("sse: the gateway is at its stream capacity")
)

// streamBuffer is the r3labs per-stream event buffer. Status changes are a
// handful per interview, so 64 slots (plus 64 per subscriber inside
// r3labs) absorb every burst while a stuck reader waits out its write
// deadline.
const streamBuffer = 64

// BrokerConfig tunes a Broker. The zero value of every field selects its
// default.
type BrokerConfig struct {
	// Heartbeat is the interval of the comment line that keeps idle
	// streams open through proxies. Zero means 15s.
	Heartbeat time.Duration
	// Retry is the reconnection delay hinted to clients with every event.
	// Zero means 2s. At shutdown each client gets a random hint between
	// Retry and 5*Retry so that reconnects spread out.
	Retry time.Duration
	// WriteTimeout bounds each write to a client; a client that does not
	// read within it is dropped. Zero means 10s.
	WriteTimeout time.Duration
	// MaxPerInterview caps the open streams of one interview on this node
	// (tabs of one user). Zero means 16; negative means no cap.
	MaxPerInterview int
	// MaxPerClient caps the open streams of one client address. Zero
	// means 256; negative means no cap.
	MaxPerClient int
	// MaxStreams caps the open streams of this node, below the process's
	// open-file limit. Zero means 10000; negative means no cap.
	MaxStreams int
	// Metrics registers the Broker's Prometheus collectors. Nil records
	// no metrics.
	Metrics prometheus.Registerer
	// Logger receives dropped clients and publish failures. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// limit turns a cap's configured value into a cap: 0 picks def, a negative
// value means none.
func limit(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return math.MaxInt
	}
	return v
}

// Broker fans status changes out to the SSE connections of each interview.
// It owns an r3labs/sse server with one stream per interview that has
// connections on this node: the Publisher the node's statuses report
// changes to (poller.Publisher).
//
// r3labs' sharp edges are handled here: AutoReplay is off (the log would
// grow forever), a stream is removed only when no subscriber is inside it
// (RemoveStream leaks a goroutine per connected subscriber), the server is
// never Closed for the same reason, events are always built fresh and
// never empty, and every write runs under a deadline (see conn).
type Broker struct {
	cfg     BrokerConfig
	log     *slog.Logger
	srv     *r3.Server
	metrics *brokerMetrics
	stop    chan struct{} // closed by Close; ends the heartbeat goroutine
	done    chan struct{} // closed when the heartbeat goroutine has ended

	mu       sync.Mutex // protects streams, clients, total, draining; held around r3labs stream create/remove/publish
	streams  map[string]*stream
	clients  map[string]int // open streams by client address
	total    int
	draining bool
	closeOne sync.Once
}

// NewBroker returns a running Broker. Close stops its heartbeat goroutine.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Retry == 0 {
		cfg.Retry = 2 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Heartbeat < 0 || cfg.Retry < 0 || cfg.WriteTimeout < 0 {
		return nil, errors.New("sse: durations must not be negative")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.MaxPerInterview = limit(cfg.MaxPerInterview, 16)
	cfg.MaxPerClient = limit(cfg.MaxPerClient, 256)
	cfg.MaxStreams = limit(cfg.MaxStreams, 10000)
	srv := r3.New()
	srv.AutoReplay = false
	srv.AutoStream = false
	srv.BufferSize = streamBuffer
	// Proxies must pass a stream through as it comes: X-Accel-Buffering
	// for nginx, no-transform for those that would compress or buffer it
	// (Cloudflare, some CDNs and corporate proxies).
	srv.Headers = map[string]string{"X-Accel-Buffering": "no", "Cache-Control": "no-cache, no-transform"}
	b := &Broker{
		cfg:     cfg,
		log:     cfg.Logger,
		srv:     srv,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		streams: make(map[string]*stream),
		clients: make(map[string]int),
	}
	var err error
	if b.metrics, err = newBrokerMetrics(cfg.Metrics, b); err != nil {
		return nil, err
	}
	go b.heartbeats()
	return b, nil
}

// Publish sends a status change to every connection of the interview on
// this node: it adds the change to the interview's stream, whose conns
// each take it from there (see stream), and wakes the interview's r3labs
// stream up, whose goroutines flush each conn. It never blocks. Should
// the r3labs stream's buffer ever be full, the interview's connections
// are ended with a retry hint: they reconnect with Last-Event-ID and
// resynchronise from the current status.
func (b *Broker) Publish(u flow.Update) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.streams[u.InterviewID]
	if s == nil {
		return
	}
	b.metrics.publish()
	s.publish(u, updateFrame(u, b.cfg.Retry))
	if b.srv.TryPublish(u.InterviewID, wakeEvent()) {
		return
	}
	b.metrics.drop("buffer_full")
	b.log.Warn("stream buffer full; reconnecting its clients", "interview", u.InterviewID, "clients", len(s.conns))
	for c := range s.conns {
		c.end(b.cfg.Retry)
	}
}

// Connections returns the number of open SSE connections on this node.
func (b *Broker) Connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

func (b *Broker) streamCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.streams)
}

// Drain refuses new connections and ends every open one (see EndStreams).
func (b *Broker) Drain() {
	b.mu.Lock()
	b.draining = true
	b.mu.Unlock()
	b.EndStreams()
}

// EndStreams ends every open stream with a retry hint picked at random
// between Retry and 5*Retry, so that clients spread their reconnects. The
// clients reconnect with Last-Event-ID and miss nothing; use it to move
// clients off a node, or in tests.
func (b *Broker) EndStreams() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.streams {
		for c := range s.conns {
			c.end(b.cfg.Retry + rand.N(4*b.cfg.Retry+1))
		}
	}
}

// Close stops the heartbeat goroutine. Connections are ended by Drain.
func (b *Broker) Close() {
	b.closeOne.Do(func() { close(b.stop) })
	<-b.done
}

// join registers a connection within the caps, creating its interview's
// stream if needed.
func (b *Broker) join(c *conn) (err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer func() {
		if err != nil {
			b.metrics.reject(err)
		} else {
			b.metrics.connect()
		}
	}()
	s := b.streams[c.interviewID]
	conns := 0
	if s != nil {
		conns = len(s.conns)
	}
	switch {
	case b.draining:
		return errDraining
	case b.total >= b.cfg.MaxStreams:
		return errStreamLimit
	case conns >= b.cfg.MaxPerInterview:
		return errInterviewLimit
	case b.clients[c.client] >= b.cfg.MaxPerClient:
		return errClientLimit
	}
	b.total++
	b.clients[c.client]++
	if s == nil {
		s = newStream()
		b.streams[c.interviewID] = s
		b.srv.CreateStream(c.interviewID)
	}
	s.conns[c] = struct{}{}
	c.join(s)
	return nil
}

// leave unregisters a connection whose r3labs ServeHTTP has returned, and
// removes the stream when it was the last: no subscriber is inside it then,
// so RemoveStream leaks nothing.
func (b *Broker) leave(c *conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.streams[c.interviewID]
	delete(s.conns, c)
	b.total--
	if b.clients[c.client]--; b.clients[c.client] == 0 {
		delete(b.clients, c.client)
	}
	if len(s.conns) == 0 {
		delete(b.streams, c.interviewID)
		b.srv.RemoveStream(c.interviewID)
	}
}

// serve runs r3labs' stream of c's interview until the client leaves or
// c is ended. The handler owns r: rather than a copy of its headers (1.4
// KiB per open stream), r3labs gets them without Last-Event-ID, which conn
// handles and r3labs would replay by, and with the stream id in the query,
// the only place r3labs reads it from.
func (b *Broker) serve(c *conn, r *http.Request) {
	r.Header.Del("Last-Event-ID")
	r.URL = &url.URL{Path: r.URL.Path, RawQuery: "stream=" + url.QueryEscape(c.interviewID)}
	b.srv.ServeHTTP(c, r)
}

func (b *Broker) heartbeats() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			for id, s := range b.streams {
				s.heartbeat()
				b.srv.TryPublish(id, wakeEvent())
			}
			b.mu.Unlock()
		}
	}
}
