package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"
)

// server is an http.Server bound to its listener.
type server struct {
	*http.Server
	ln net.Listener
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
func (g *Gateway) Serve(ctx context.Context) error {
	gw := g.newServer(g.Handler, g.listener)
	g.start(gw)
	g.log.Info("pushgate ready", "open", g.URL+"/", "upstream", g.UpstreamURL, "flow_origin", strings.Join(g.FlowOrigins, ","))
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-g.serveErrs:
	}
	g.log.Info("shutting down", "grace", g.cfg.ShutdownGrace)
	g.shutdownBy = time.Now().Add(g.cfg.ShutdownGrace)
	if g.cfg.DrainDelay > 0 {
		g.Handler.Unready()
		g.log.Info("unready; draining after the delay", "delay", g.cfg.DrainDelay)
		time.Sleep(g.cfg.DrainDelay)
	}
	g.Handler.Drain()
	if g.Simulator != nil {
		g.Simulator.Close() // its webhooks, before the gateway stops taking them
	}
	drained, cancel := context.WithDeadline(context.Background(), g.shutdownBy)
	if err := g.Handler.Drained(drained); err != nil {
		g.log.Warn("requests still in flight at the end of the grace period", "err", err)
	}
	cancel()
	g.stop()
	g.shutdownServer(gw)
	g.serving.Wait()
	return serveErr
}

// Close stops everything New started, in reverse order: streams drained,
// pollers stopped, cluster left, upstream connections released, simulator
// stopped. It is for a gateway whose Handler the caller serves itself (Serve
// shuts down by itself); it may be called more than once.
func (g *Gateway) Close() {
	g.stop()
	g.serving.Wait()
}

// stop runs the closers, once.
func (g *Gateway) stop() {
	g.closeOnce.Do(func() {
		for i := len(g.closers) - 1; i >= 0; i-- {
			g.closers[i]()
		}
	})
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
		g.log.Warn("shutdown incomplete; closing connections", "err", err)
		_ = s.Close()
	}
}
