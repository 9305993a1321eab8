package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pushgate/pushgate/sse"
)

// server is an http.Server bound to its listener.
type server struct {
	*http.Server
	ln net.Listener
}

// newServer returns a server with timeouts that keep slow clients from
// holding it. WriteTimeout stays 0: streams use per-write deadlines. On a
// listener under the connection caps, the server tells it which
// connections are idle, and answers those over a cap (see sse.Listener).
//
// With tlsConfig, the server takes TLS and HTTP/2 on ln (the connection
// caps, set up on ln, see through TLS to the connection beneath).
func (g *Gateway) newServer(h http.Handler, ln net.Listener, tlsConfig *tls.Config) *server {
	s := &server{
		Server: &http.Server{
			Handler: h,
			// No ReadTimeout: its deadline would also cut open streams. The
			// Handler sets each request's own deadlines (see -read-timeout).
			ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
			IdleTimeout:       g.cfg.IdleTimeout,
			MaxHeaderBytes:    32 << 10,
			ErrorLog:          log.New(serverLog{g.log, g.certs}, "", 0),
		},
		ln: ln,
	}
	if l, ok := ln.(*sse.Listener); ok {
		l.Attach(s.Server)
	}
	if tlsConfig != nil {
		s.TLSConfig = tlsConfig // Serve then sets up HTTP/2 for the "h2" it offers
		s.ln = tls.NewListener(ln, tlsConfig)
		// A stream's write deadline ends only that stream: over HTTP/2 a
		// client that stops reading the connection altogether would hold
		// every stream on it, and the frames for them, without a bound on
		// the connection's own writes.
		s.HTTP2 = &http.HTTP2Config{WriteByteTimeout: cmp.Or(g.cfg.Broker.WriteTimeout, 10*time.Second)}
	}
	return s
}

// serverLog is the servers' ErrorLog: what net/http reports goes to the
// log at Warn, but for failed TLS handshakes (a load balancer's TCP check,
// a scanner, a client that gave up), which go to Debug and are counted.
type serverLog struct {
	log   *slog.Logger
	certs *certReloader // counts the failed handshakes; nil without TLS
}

func (w serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		w.log.Debug(msg)
		if w.certs != nil {
			w.certs.metrics.handshakeFailed()
		}
		return len(p), nil
	}
	w.log.Warn(msg)
	return len(p), nil
}

// start serves s in the background; an error other than a shutdown ends
// Serve.
func (g *Gateway) start(s *server) {
	g.serving.Go(func() {
		if err := s.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.serveErrs <- err
		}
	})
}

// Serve serves the gateway until ctx ends or a server fails, then shuts
// down in order within ShutdownGrace: readiness off (for DrainDelay); then
// streams ended and every route that needs the pollers answered 503
// draining with Retry-After; the simulator's webhooks stopped; once the
// requests already on those routes are done, the
// pollers, the cluster (whose leases other nodes take at once), the
// upstream client and the simulator stopped; and, last, the listener
// closed and requests in flight finished. Until that last step the node
// answers every client, 503 draining where it no longer serves, so a
// client arriving during the shutdown is told to go elsewhere rather than
// refused.
//
// Serve returns at the end of the grace period at the latest, whatever
// the parts are doing (a Redis that hangs, an upstream that does not
// answer): a stage still running then is logged and left behind (see
// within), and the process exits without it.
func (g *Gateway) Serve(ctx context.Context) error {
	var tlsConfig *tls.Config
	if g.certs != nil {
		tlsConfig = g.certs.serverConfig()
	}
	gw := g.newServer(g.Handler, g.listener, tlsConfig)
	g.start(gw)
	var ms *server // the metrics listener's; nil without one
	if g.ls.Metrics != nil {
		ms = g.newServer(g.metricsHandler(), g.ls.Metrics, nil)
		g.start(ms)
		g.log.Info("metrics listener: /metrics, /healthz, /readyz", "metrics_addr", g.ls.Metrics.Addr().String())
	}
	entry := []any{"open", g.URL + "/"} // the demo page starts sessions
	if g.cfg.HTTP.BackendSessionsOnly {
		entry = []any{"server_api", g.URL + "/v1/sessions"} // only the backend does
	}
	g.log.Info("pushgate ready", append(entry, "upstream", g.UpstreamURL, "flow_origin", strings.Join(g.FlowOrigins, ","))...)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-g.serveErrs:
	}
	began := time.Now()
	g.log.Info("shutting down", "grace", g.cfg.ShutdownGrace, "drain_delay", g.cfg.DrainDelay)
	by := began.Add(g.cfg.ShutdownGrace)
	g.shutdownBy = by
	if g.cfg.DrainDelay > 0 {
		g.Handler.Unready()
		g.log.Info("unready; draining after the delay", "delay", g.cfg.DrainDelay)
		time.Sleep(g.cfg.DrainDelay)
	}
	g.Handler.Drain()
	if g.Simulator != nil {
		// Its webhooks, before the gateway stops taking them.
		g.within(by, "simulator webhooks", g.Simulator.Close)
	}
	drained, cancel := context.WithDeadline(context.Background(), by)
	if err := g.Handler.Drained(drained); err != nil {
		g.log.Warn("shutdown: stage ran out of time; going on without it", "stage", "requests in flight", "grace", g.cfg.ShutdownGrace)
	}
	cancel()
	g.stop(by)
	g.shutdownServer(gw)
	if ms != nil {
		g.shutdownServer(ms) // after the gateway's: probes and scrapes see the whole shutdown
	}
	g.within(by, "servers", g.serving.Wait)
	g.log.Info("shut down", "took", time.Since(began).Round(time.Millisecond))
	return serveErr
}

// Close stops everything New started, in reverse order: streams drained,
// pollers stopped, cluster left, upstream connections released, simulator
// stopped, within ShutdownGrace as Serve's shutdown does. It is for a
// gateway whose Handler the caller serves itself (Serve shuts down by
// itself); it may be called more than once.
func (g *Gateway) Close() {
	by := time.Now().Add(g.cfg.ShutdownGrace)
	if g.shutdownBy.IsZero() {
		g.shutdownBy = by // for the closers that stop servers
	}
	g.stop(by)
	g.within(by, "servers", g.serving.Wait)
}

// closer undoes one thing New built; name says which in the shutdown's
// log lines.
type closer struct {
	name  string
	close func()
}

// onClose adds f to what Close and Serve's shutdown run, in the reverse
// order of the calls.
func (g *Gateway) onClose(name string, f func()) {
	g.closers = append(g.closers, closer{name: name, close: f})
}

// stop runs the closers once, in reverse order, each within by (see
// within).
func (g *Gateway) stop(by time.Time) {
	g.closeOnce.Do(func() {
		for i := len(g.closers) - 1; i >= 0; i-- {
			g.within(by, g.closers[i].name, g.closers[i].close)
		}
	})
}

// lateWait is how long a stage that starts at or after the end of the grace
// period is still waited for: long enough for one that has nothing left to
// wait on (a stage whose parts are already stopped), so that only stages
// really stuck are logged, and short enough that the dozen stages of a
// shutdown add little to the grace period.
const lateWait = 20 * time.Millisecond

// within runs one stage of the shutdown, f, and waits for it until by, or
// lateWait when by is nearer. A stage still running then is logged and
// left running, and within returns: the shutdown goes on without it, and
// the process exits without waiting for it. It reports whether f returned.
func (g *Gateway) within(by time.Time, stage string, f func()) bool {
	began := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t := time.NewTimer(max(time.Until(by), lateWait))
	defer t.Stop()
	select {
	case <-done:
		g.log.Debug("shutdown: stage done", "stage", stage, "took", time.Since(began).Round(time.Millisecond))
		return true
	case <-t.C:
		g.log.Warn("shutdown: stage ran out of time; going on without it", "stage", stage, "grace", g.cfg.ShutdownGrace)
		return false
	}
}

// shutdownServer stops s gracefully by the end of the shutdown's grace
// period, or closes its connections when that runs out.
func (g *Gateway) shutdownServer(s *server) {
	by := g.shutdownBy
	if by.IsZero() { // Close without Serve
		by = time.Now().Add(g.cfg.ShutdownGrace)
	}
	ctx, cancel := context.WithDeadline(context.Background(), by)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		g.log.Warn("shutdown: stage ran out of time; closing its connections", "stage", "listener "+s.ln.Addr().String(), "grace", g.cfg.ShutdownGrace, "err", err)
		_ = s.Close()
	}
}
