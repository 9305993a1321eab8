package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// upstreamPool caps the polling backend's connections to the upstream; the
// file budget of a polling worker reserves them.
const upstreamPool = 128

// backend is the integration guide's backend, for comparison: every
// GET /onboarding-status?interviewId= makes exactly one upstream status call
// with that interview's session token and answers the upstream's JSON as is.
// Each worker runs its own for the interviews it serves, like a fleet of
// backend nodes, so its file budget holds both ends of each browser's
// connection.
type backend struct {
	sim    string
	tokens map[string]string // interview id -> upstream session token; read-only
	client *http.Client
	calls  atomic.Int64 // upstream calls made
	ln     net.Listener
	srv    *http.Server
	wg     sync.WaitGroup
}

func startBackend(sim string, ivs []assigned) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{
		sim:    strings.TrimRight(sim, "/"),
		tokens: make(map[string]string, len(ivs)),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: upstreamPool, MaxConnsPerHost: upstreamPool, IdleConnTimeout: time.Minute,
		}},
		ln: ln,
	}
	for _, iv := range ivs {
		b.tokens[iv.ID] = iv.Token
	}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Minute}
	b.wg.Go(func() { _ = b.srv.Serve(ln) })
	return b, nil
}

// URL is the backend's base URL.
func (b *backend) URL() string { return "http://" + b.ln.Addr().String() }

// Close stops serving, closes the browsers' connections and waits.
func (b *backend) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = b.srv.Shutdown(ctx)
	_ = b.srv.Close()
	b.wg.Wait()
	b.client.CloseIdleConnections()
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := b.tokens[r.URL.Query().Get("interviewId")]
	if r.URL.Path != "/onboarding-status" || !ok {
		http.Error(w, `{"error":"no such interview"}`, http.StatusNotFound)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, b.sim+"/0/omni/get/onboarding/status", nil)
	if err != nil {
		http.Error(w, `{"error":"bad upstream URL"}`, http.StatusInternalServerError)
		return
	}
	req.Header.Set("X-Incode-Hardware-Id", token)
	req.Header.Set("api-version", "1.0")
	b.calls.Add(1)
	resp, err := b.client.Do(req)
	if err != nil {
		http.Error(w, `{"error":"upstream: `+errorKind(err)+`"}`, http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 64<<10))
}
