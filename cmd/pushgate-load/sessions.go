package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// session is one interview to load: its id and the token its subscribers
// send (a gateway token in sse mode, the upstream session token in polling).
type session struct {
	ID    string `json:"interviewId"`
	Token string `json:"token"`
}

// api speaks the gateway's session API and the simulator's upstream and
// control APIs, over one shared keep-alive pool.
type api struct {
	http     *http.Client
	gateways []string // one base URL, or the nodes of a cluster
	sim      string
	simKey   string // x-api-key of the upstream API
	simToken string // control token of the control API; "" sends none
}

func newAPI(gateways []string, sim, simKey, simToken string) *api {
	a := &api{
		http:     &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		sim:      strings.TrimRight(sim, "/"),
		simKey:   simKey,
		simToken: simToken,
	}
	for _, g := range gateways {
		a.gateways = append(a.gateways, strings.TrimRight(g, "/"))
	}
	return a
}

func (a *api) Close() { a.http.CloseIdleConnections() }

// do sends req and decodes a 2xx JSON answer into out (nil: discard it).
// Other answers come back as *httpStatusError, which names the limit that
// refused them (e.g. 429 from -sessions-per-minute).
func (a *api) do(req *http.Request, out any) error {
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return &httpStatusError{Code: resp.StatusCode, Body: string(trimBody(body))}
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// gatewaySession starts session i the way the page does: GET /onboarding-url,
// at node i mod N of a cluster.
func (a *api) gatewaySession(ctx context.Context, i int) (session, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.gateways[i%len(a.gateways)]+"/onboarding-url", nil)
	if err != nil {
		return session{}, err
	}
	var s session
	return s, a.do(req, &s)
}

// simSession starts an upstream session directly, as the guide's backend
// does: POST /omni/start, whose token reads the status later.
func (a *api) simSession(ctx context.Context, _ int) (session, error) {
	body := `{"configurationId":"x","countryCode":"ALL","language":"en-US"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.sim+"/omni/start", strings.NewReader(body))
	if err != nil {
		return session{}, err
	}
	req.Header.Set("api-version", "1.0")
	req.Header.Set("x-api-key", a.simKey)
	req.Header.Set("Content-Type", "application/json")
	var s session
	return s, a.do(req, &s)
}

// control makes a request of the simulator's control API (/sim/...), with
// the control token when there is one.
func (a *api) control(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.sim+path, body)
	if err != nil {
		return nil, err
	}
	if a.simToken != "" {
		req.Header.Set("Authorization", "Bearer "+a.simToken)
	}
	return req, nil
}

// setStatus changes an interview's upstream status through the control API.
func (a *api) setStatus(ctx context.Context, id, status string) error {
	body, _ := json.Marshal(map[string]string{"onboardingStatus": status})
	req, err := a.control(ctx, http.MethodPost, "/sim/interviews/"+id+"/status", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return a.do(req, nil)
}

// simStats are the simulator's call counters.
type simStats struct {
	Status            int64            `json:"status"`
	StatusByInterview map[string]int64 `json:"status_by_interview"`
}

func (a *api) stats(ctx context.Context) (simStats, error) {
	req, err := a.control(ctx, http.MethodGet, "/sim/stats", nil)
	if err != nil {
		return simStats{}, err
	}
	var s simStats
	return s, a.do(req, &s)
}

// processMetrics reads process_resident_memory_bytes and
// process_cpu_seconds_total (0 when absent) from a gateway's Prometheus
// /metrics, for a server this tool did not start.
func (a *api) processMetrics(ctx context.Context, gateway string) (rss int64, cpu float64, err error) {
	v, err := a.metrics(ctx, gateway, "process_resident_memory_bytes", "process_cpu_seconds_total")
	if err != nil {
		return 0, 0, err
	}
	r, ok := v["process_resident_memory_bytes"]
	if !ok {
		return 0, 0, fmt.Errorf("no process_resident_memory_bytes in %s/metrics", gateway)
	}
	return int64(r), v["process_cpu_seconds_total"], nil
}

// metrics reads the named unlabelled samples from a gateway's Prometheus
// /metrics; a name it does not show is absent from the answer.
func (a *api) metrics(ctx context.Context, gateway string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gateway+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &httpStatusError{Code: resp.StatusCode}
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for _, name := range names {
			if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				if err != nil {
					return nil, fmt.Errorf("%s in %s/metrics: %w", name, gateway, err)
				}
				out[name] = v
			}
		}
	}
	return out, sc.Err()
}

// createSessions makes n sessions with a few requests in flight. It stops at
// the first error: a load run with a different number of interviews than
// asked would measure something else.
func createSessions(ctx context.Context, n int, start func(ctx context.Context, i int) (session, error)) ([]session, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]session, n)
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // protects firstErr
		firstErr error
	)
	for range min(16, n) {
		wg.Go(func() {
			for i := range next {
				s, err := start(ctx, i)
				if err == nil && (s.ID == "" || s.Token == "") {
					err = fmt.Errorf("session answer without interviewId or token")
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("session %d of %d: %w", i+1, n, err)
					}
					mu.Unlock()
					cancel()
					continue
				}
				out[i] = s
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err() // the run was stopped
	}
	return out, firstErr
}
