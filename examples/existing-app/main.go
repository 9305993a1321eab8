// Command existing-app is an integrator's app in front of pushgate: a small
// backend in the shape of Incode's sample backends, and its page, on their
// own origin. It is the walkthrough of docs/integrating.md, runnable.
//
//	go run ./examples/existing-app          # then open the URL it prints
//
// With -gateway=start (the default) it builds pushgate, starts it with the
// built-in simulator and the flags an integrator sets (-public-sessions=false,
// -api-token, -allowed-origins, -languages, -relay-url, -relay-secret), and
// stops it on Ctrl-C. With -gateway=https://push.example it uses a running
// pushgate, as production does; PUSHGATE_API_TOKEN and PUSHGATE_RELAY_SECRET
// then hold that pushgate's -api-token and -relay-secret.
//
//	page (web/) ──POST /onboarding-url──▶ backend ──POST /v1/sessions──▶ pushgate
//	page ◀── status changes (SSE), client.js ─────────────────────────── pushgate
//	page ──GET /fetch-score──▶ backend ──GET /v1/sessions/{id}──▶ pushgate (full score)
//	backend ◀──POST /webhook (signed relay: session.status, session.ended) pushgate
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command's flags and secrets.
type options struct {
	addr        string // the app's listen address; its page's origin is http://<addr>
	gateway     string // "start", or the base URL of a running pushgate
	gatewayAddr string // with gateway "start": pushgate's -addr
	simAddr     string // with gateway "start": pushgate's -sim-addr
	pushgate    string // with gateway "start": the pushgate binary; empty builds one
	flowOrigin  string // origins of the onboarding pages, comma-separated, for the page's CSP frame-src
	apiToken    string // pushgate's -api-token
	relaySecret string // pushgate's -relay-secret
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:3000", "the app's listen address, host:port")
	flag.StringVar(&o.gateway, "gateway", "start", `"start" runs pushgate with its simulator beside the app; a URL uses a running pushgate`)
	flag.StringVar(&o.gatewayAddr, "gateway-addr", "127.0.0.1:8080", "with -gateway=start: pushgate's listen address, host:port")
	flag.StringVar(&o.simAddr, "sim-addr", "127.0.0.1:8090", "with -gateway=start: the simulator's listen address, host:port")
	flag.StringVar(&o.pushgate, "pushgate", "", "with -gateway=start: a pushgate binary to run; empty builds ./cmd/pushgate")
	flag.StringVar(&o.flowOrigin, "flow-origin", "", "comma-separated origins of the onboarding pages the iframe shows, as pushgate's -flow-origin; empty with -gateway=start means the simulator's")
	flag.Parse()
	o.apiToken = os.Getenv("PUSHGATE_API_TOKEN")
	o.relaySecret = os.Getenv("PUSHGATE_RELAY_SECRET")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, o, os.Stderr, func(url string) {
		fmt.Fprintf(os.Stderr, "\n  Open %s in a browser (Ctrl-C stops the app and pushgate).\n\n", url)
	})
	if err != nil {
		log.Fatal(err)
	}
}

// run starts pushgate (with -gateway=start) and the app, calls ready with
// the page's URL, and serves until ctx ends; then it stops both and
// returns once they have stopped.
func run(ctx context.Context, o options, logw io.Writer, ready func(url string)) error {
	logger := log.New(logw, "app      | ", log.Ltime)
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	origin := "http://" + ln.Addr().String() // the page's origin, for -allowed-origins

	var gw *pushgate
	if o.gateway == "start" {
		if o.apiToken == "" {
			o.apiToken = rand.Text() // 128 random bits
		}
		if o.relaySecret == "" {
			o.relaySecret = newRelaySecret()
		}
		if o.flowOrigin == "" {
			o.flowOrigin = "http://" + o.simAddr
		}
		if gw, err = startPushgate(ctx, o, origin, logw); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while building
			}
			return err
		}
		o.gateway = gw.url
	}
	b, err := newBackend(o, logger)
	if err != nil {
		return errors.Join(err, gw.stop())
	}
	defer b.client.CloseIdleConnections()
	if gw != nil {
		if err := gw.waitHealthy(ctx, b.client); err != nil {
			if ctx.Err() != nil {
				err = nil // stopped while starting
			}
			return errors.Join(err, gw.stop())
		}
	}

	srv := &http.Server{Handler: b.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: logger}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Printf("serving the app on %s, with pushgate at %s", origin, o.gateway)
	ready(origin + "/")

	select {
	case <-ctx.Done():
		err = nil
	case err = <-served:
	case <-gw.exited():
		err = errors.New("pushgate exited") // stop below says why
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdown), gw.stop())
}

// newRelaySecret returns a relay secret as pushgate takes it: whsec_ and
// the base64 of a random key.
func newRelaySecret() string {
	key := make([]byte, 32)
	rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}
