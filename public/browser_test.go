package public_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// The browser tests drive the page in a real, headless Chromium against a
// whole pushgate (gateway and simulator on loopback, in this process).
// Run them alone with: go test ./public -run Browser -v
// With PUSHGATE_SCREENSHOTS=dir they save screenshots of the page there.

// interval is the poll interval of the gateway under test.
const interval = 200 * time.Millisecond

// flow is the path the simulator's flow page walks.
var flow = simulator.Flow

// flowButtons are the simulator's flow page buttons, one per status after
// UNKNOWN.
var flowButtons = []string{"#capture-id", "#confirm-id", "#take-selfie", "#finish"}

// chromium returns the browser to run, or skips the test when there is
// none; under CI=true a missing browser fails instead.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is required under CI=true: apt-get install chromium")
	}
	t.Skip("skipping browser test: Chromium is not installed (apt-get install chromium)")
	return ""
}

// gateway is pushgate with the simulator, behind a middleware that counts
// the requests the page makes and can take /events away.
type gateway struct {
	url      string
	sim      *simulator.Simulator
	simURL   string
	broker   *sse.Broker
	eventsOn bool

	mu        sync.Mutex     // protects the fields below
	requests  map[string]int // by path; CORS preflights by "OPTIONS <path>"
	urls      []string       // every request's path and query, in order
	resumed   int            // /events requests that carried Last-Event-ID
	buffering bool           // /events answers are held back until they end
}

func startGateway(t *testing.T, eventsOn bool) *gateway {
	t.Helper()
	return startGatewayWith(t, eventsOn, pushgate.SimulatorConfig{})
}

// startGatewayWith is startGateway with the simulator set up as sim says.
func startGatewayWith(t *testing.T, eventsOn bool, sim pushgate.SimulatorConfig) *gateway {
	t.Helper()
	return startGatewayConfig(t, eventsOn, func(c *pushgate.Config, _ *pushgate.Listeners) { c.Simulator = sim })
}

// startGatewayConfig is startGateway with the gateway's Config changed by
// configure first, which also sees where the gateway and simulator listen.
func startGatewayConfig(t *testing.T, eventsOn bool, configure func(*pushgate.Config, *pushgate.Listeners)) *gateway {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ls, err := pushgate.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := ls.Gateway
	cfg := pushgate.Config{
		Secret: "browser-test-secret-0123456789ab",
		Poller: poller.Config{Interval: interval},
		Broker: sse.BrokerConfig{Retry: 300 * time.Millisecond},
		Logger: quiet,
	}
	configure(&cfg, &ls)
	gw, err := pushgate.New(cfg, ls)
	if err != nil {
		t.Fatal(err)
	}
	h := gw.Handler
	g := &gateway{sim: gw.Simulator, simURL: gw.SimURL, broker: gw.Broker, eventsOn: eventsOn, requests: map[string]int{}}
	// The gateway's handler is served here, behind a middleware that counts
	// the page's requests and can take /events away, or buffer it as a
	// proxy that holds answers until they end would.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		if r.Method == http.MethodOptions {
			g.requests["OPTIONS "+r.URL.Path]++ // a CORS preflight
		} else {
			g.requests[r.URL.Path]++
		}
		g.urls = append(g.urls, r.URL.String())
		if r.URL.Path == "/events" && r.Header.Get("Last-Event-ID") != "" {
			g.resumed++
		}
		buffering := g.buffering
		g.mu.Unlock()
		switch {
		case r.URL.Path == "/events" && !g.eventsOn:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"streaming is switched off"}`)
			return
		case r.URL.Path == "/events" && buffering:
			w = &bufferingWriter{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	}))
	srv.Listener.Close()
	srv.Listener = gl
	srv.Start()
	t.Cleanup(func() {
		h.Drain()
		srv.CloseClientConnections()
		srv.Close()
		gw.Close()
	})
	g.url = srv.URL
	return g
}

// bufferingWriter holds a whole answer back until it ends, as a proxy
// that buffers does: an endless stream never reaches the client.
type bufferingWriter struct {
	http.ResponseWriter
	code int
	body []byte
}

func (b *bufferingWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}
func (b *bufferingWriter) Write(p []byte) (int, error) {
	b.body = append(b.body, p...)
	return len(p), nil
}
func (b *bufferingWriter) Flush()                      {}
func (b *bufferingWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

func (g *gateway) count(path string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests[path]
}

// newBrowser starts a headless Chromium with a fresh profile, kept from
// calling out to the internet, and returns its context. extra adds
// command-line options.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return bctx
}

// tab is one browser tab and the console messages its page wrote.
type tab struct {
	t    *testing.T
	ctx  context.Context
	done chan struct{} // closed when console collection ended

	mu      sync.Mutex // protects console
	console []chromedp.ConsoleMessage
}

func openTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	tb := &tab{t: t, ctx: ctx, done: make(chan struct{})}
	messages := chromedp.Console(ctx)
	go func() {
		defer close(tb.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-tb.done
	})
	return tb
}

// do runs actions with a deadline and fails the test on error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v (console: %v)", what, err, tb.messages())
	}
}

func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// clickInFlow clicks an element of the simulator's flow page inside the
// page's cross-origin iframe.
func (tb *tab) clickInFlow(selector string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	frames, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("#app-iframe")))
	if err != nil || len(frames) != 1 {
		tb.t.Fatalf("finding #app-iframe: %v (%d found)", err, len(frames))
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector), chromedp.FromNode(frames[0]))); err != nil {
		tb.t.Fatalf("clicking %s in the flow: %v", selector, err)
	}
}

func (tb *tab) waitProgress(status string) {
	tb.t.Helper()
	tb.do("waiting for progress "+status, chromedp.WaitVisible(chromedp.CSS(`#progress li[data-status="`+status+`"]`)))
}

// progress returns the statuses of the progress entries, in page order.
func (tb *tab) progress() []string {
	tb.t.Helper()
	return eval[[]string](tb, `[...document.querySelectorAll('#progress li[data-status]')].map(li => li.dataset.status)`)
}

func (tb *tab) messages() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.console {
		out = append(out, m.String()+" ("+m.Source+" "+m.URL+")")
	}
	return out
}

// checkConsole fails on any uncaught exception or console error. A scenario
// that makes the gateway fail on purpose passes allowFailedLoads: Chromium
// then logs "Failed to load resource" for the answers it meant, and the page
// cannot keep it from doing so.
func (tb *tab) checkConsole(allowFailedLoads bool) {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.console {
		switch {
		case m.IsException():
			tb.t.Errorf("uncaught exception: %s", m.Text)
		case m.Type == chromedp.ConsoleError && m.Source == "network" && allowFailedLoads:
		case m.Type == chromedp.ConsoleError:
			tb.t.Errorf("console error: %s (%s %s:%d)", m.Text, m.Source, m.URL, m.Line+1)
		}
	}
}

// screenshot saves the page as dir/name when PUSHGATE_SCREENSHOTS=dir.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	dir := os.Getenv("PUSHGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// start opens the page and waits for the flow's iframe.
func (tb *tab) start(url string) {
	tb.t.Helper()
	tb.do("opening the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
}

// completeFlow clicks through the simulator's flow, waiting for the page's
// progress entry of each status, and picks outcome before Finish. It
// returns when Finish was clicked.
func (tb *tab) completeFlow(outcome string) time.Time {
	tb.t.Helper()
	tb.waitProgress(flow[0])
	for i, button := range flowButtons[:3] {
		tb.clickInFlow(button)
		tb.waitProgress(flow[i+1])
	}
	tb.clickInFlow(`input[name=outcome][value="` + outcome + `"]`)
	tb.clickInFlow("#finish")
	return time.Now()
}

// waitResult waits until the iframe is gone and the outcome is shown, and
// returns the outcome and its text.
func (tb *tab) waitResult() (outcome, text string) {
	tb.t.Helper()
	tb.do("waiting for the iframe to close", chromedp.WaitNotPresent(chromedp.CSS("#app-iframe")))
	tb.do("waiting for the result", chromedp.WaitVisible(chromedp.CSS("#result[data-outcome]")))
	return eval[string](tb, `document.getElementById('result').dataset.outcome`), eval[string](tb, `document.getElementById('result').innerText`)
}

func TestBrowserHappyPath(t *testing.T) {
	g := startGateway(t, true)
	tb := openTab(t, newBrowser(t))
	tb.start(g.url)

	frame := eval[map[string]string](tb, `(() => { const f = document.getElementById('app-iframe');
		return {width: f.getAttribute('width'), height: f.getAttribute('height'), allow: f.getAttribute('allow'), src: f.src,
			parent: f.parentNode.id, border: f.getAttribute('frameborder')}; })()`)
	if frame["width"] != "100%" || frame["height"] != "100%" || frame["parent"] != "app" || frame["border"] != "0" {
		t.Errorf("iframe %v, want 100%% x 100%% without a border inside #app", frame)
	}
	if frame["allow"] != "camera; microphone; geolocation; accelerometer; gyroscope" {
		t.Errorf("iframe allow=%q, want the camera, microphone, geolocation and motion sensors the header grants the flow", frame["allow"])
	}
	if !strings.Contains(frame["src"], "/flow/") || strings.HasPrefix(frame["src"], g.url) {
		t.Errorf("iframe src %q, want the simulator's flow page on another origin", frame["src"])
	}

	tb.waitProgress(flow[0])
	tb.clickInFlow(flowButtons[0])
	tb.waitProgress(flow[1])
	tb.screenshot("screenshot-flow.png")
	for i, button := range flowButtons[1:3] {
		tb.clickInFlow(button)
		tb.waitProgress(flow[i+2])
	}
	tb.clickInFlow(`input[name=outcome][value="OK"]`)
	finished := tb.clickAndTime("#finish")
	tb.do("waiting for the iframe to close", chromedp.WaitNotPresent(chromedp.CSS("#app-iframe")))
	if took := time.Since(finished); took > time.Second {
		t.Errorf("the iframe closed %v after the last step, want within 1s", took)
	}
	outcome, text := tb.waitResult()
	if outcome != "OK" || !strings.Contains(text, "verified") {
		t.Errorf("result %s %q, want OK and a verified message", outcome, text)
	}
	if got := tb.progress(); !slices.Equal(got, flow) {
		t.Errorf("progress entries %v, want each status once, in order: %v", got, flow)
	}
	tb.screenshot("screenshot-done.png")

	// Scenario 3: no polling while SSE works, and one stream.
	if n := g.count("/onboarding-status"); n != 0 {
		t.Errorf("the page polled /onboarding-status %d times while SSE worked", n)
	}
	if n := g.count("/events"); n != 1 {
		t.Errorf("the page opened %d event streams, want 1", n)
	}
	if mode := eval[string](tb, `document.body.dataset.mode`); mode != "sse" {
		t.Errorf("transport %q, want sse", mode)
	}
	tb.checkConsole(false)
}

// clickAndTime clicks in the flow and returns when the click happened.
func (tb *tab) clickAndTime(selector string) time.Time {
	tb.t.Helper()
	tb.clickInFlow(selector)
	return time.Now()
}

func TestBrowserOutcomes(t *testing.T) {
	g := startGateway(t, true)
	browser := newBrowser(t)
	texts := map[string]string{}
	for _, outcome := range []string{"OK", "WARN", "FAIL"} {
		t.Run(outcome, func(t *testing.T) {
			tb := openTab(t, browser)
			tb.start(g.url)
			tb.completeFlow(outcome)
			got, text := tb.waitResult()
			if got != outcome || strings.TrimSpace(text) == "" {
				t.Fatalf("result %q %q, want %s with words", got, text, outcome)
			}
			texts[outcome] = text
			tb.checkConsole(false)
		})
	}
	if texts["OK"] == texts["WARN"] || texts["WARN"] == texts["FAIL"] || texts["OK"] == texts["FAIL"] {
		t.Fatalf("outcomes are not told apart: %q", texts)
	}
}

func TestBrowserFallsBackToPollingWithoutSSE(t *testing.T) {
	g := startGateway(t, false)
	tb := openTab(t, newBrowser(t))
	tb.start(g.url)
	tb.do("waiting for polling", chromedp.WaitVisible(chromedp.CSS(`body[data-mode="polling"]`)))
	tb.completeFlow("WARN")
	if outcome, _ := tb.waitResult(); outcome != "WARN" {
		t.Fatalf("outcome %s, want WARN", outcome)
	}
	if g.count("/events") == 0 || g.count("/onboarding-status") == 0 {
		t.Fatalf("requests %v: want a failed stream, then polling", g.requests)
	}
	if got := tb.progress(); got[len(got)-1] != "ONBOARDING_FINISHED" || len(got) != len(slices.Compact(slices.Clone(got))) {
		t.Fatalf("progress %v", got)
	}
	tb.checkConsole(true)
}

func TestBrowserResumesAfterDroppedStreams(t *testing.T) {
	g := startGateway(t, true)
	tb := openTab(t, newBrowser(t))
	tb.start(g.url)
	tb.waitProgress(flow[0])
	tb.clickInFlow(flowButtons[0])
	tb.waitProgress(flow[1])

	g.broker.EndStreams() // every stream dropped mid-flow
	tb.clickInFlow(flowButtons[1])
	tb.waitProgress(flow[2])
	tb.clickInFlow(flowButtons[2])
	tb.waitProgress(flow[3])
	tb.clickInFlow("#finish")
	if outcome, _ := tb.waitResult(); outcome != "OK" {
		t.Fatalf("outcome %s, want OK", outcome)
	}
	g.mu.Lock()
	resumed := g.resumed
	g.mu.Unlock()
	if resumed == 0 {
		t.Fatal("the browser did not reconnect with Last-Event-ID")
	}
	if got := tb.progress(); !slices.Equal(got, flow) {
		t.Fatalf("progress %v, want each status once, in order", got)
	}
	if mode := eval[string](tb, `document.body.dataset.mode`); mode != "sse" {
		t.Errorf("transport %q after the reconnect, want sse", mode)
	}
	tb.checkConsole(false)
}

func TestBrowserShowsErrorsInWords(t *testing.T) {
	g := startGateway(t, true)
	g.sim.SetFaults(simulator.Faults{ErrorRate: 1, Status: 503})
	tb := openTab(t, newBrowser(t))
	tb.do("opening the page", chromedp.Navigate(g.url+"/"), chromedp.WaitVisible(chromedp.CSS("#error")))
	message := eval[string](tb, `document.getElementById('error').innerText`)
	if !strings.Contains(message, "couldn't start") || !strings.Contains(message, "unavailable") {
		t.Errorf("error %q, want words saying the start failed because the service is unavailable", message)
	}
	if n := eval[int](tb, `document.querySelectorAll('#app-iframe').length`); n != 0 {
		t.Errorf("%d iframes shown after a failed start", n)
	}
	g.sim.ClearFaults()
	tb.do("retrying", chromedp.Click(chromedp.CSS("#retry")), chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
	if hidden := eval[bool](tb, `document.getElementById('error').hidden`); !hidden {
		t.Error("the error stays on screen after a successful retry")
	}
	tb.checkConsole(true)
}

func TestBrowserManyTabsOneInterview(t *testing.T) {
	g := startGateway(t, true)
	browser := newBrowser(t)
	first := openTab(t, browser)
	began := time.Now() // the interview's upstream session starts after this
	first.start(g.url)
	first.waitProgress(flow[0])
	saved := eval[string](first, `sessionStorage.getItem('pushgate.session')`)
	if saved == "" {
		t.Fatal("the page kept no session to resume")
	}
	// Four more tabs of the same interview, as after duplicating the tab:
	// same session in sessionStorage, same cookie.
	tabs := []*tab{first}
	for range 4 {
		tb := openTab(t, browser)
		tb.do("opening the page", chromedp.Navigate(g.url+"/healthz"),
			chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('pushgate.session', `+jsString(saved)+`)`),
			chromedp.Navigate(g.url+"/"), chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
		tb.waitProgress(flow[0])
		tabs = append(tabs, tb)
	}
	first.completeFlow("OK")
	for i, tb := range tabs {
		if outcome, _ := tb.waitResult(); outcome != "OK" {
			t.Errorf("tab %d: outcome %s", i, outcome)
		}
	}
	elapsed := time.Since(began)
	if n := g.count("/onboarding-url"); n != 1 {
		t.Errorf("%d upstream sessions created for one interview in five tabs", n)
	}
	stats := g.sim.Stats()
	if len(stats.StatusByInterview) != 1 {
		t.Fatalf("status calls for %d interviews, want 1", len(stats.StatusByInterview))
	}
	var calls int64
	for _, calls = range stats.StatusByInterview {
	}
	if max := int64(elapsed/interval) + 2; calls > max {
		t.Errorf("five tabs over %v cost %d upstream status calls, want at most one per interval (%d)", elapsed, calls, max)
	}
	for _, tb := range tabs {
		tb.checkConsole(false)
	}
}

func TestBrowserNarrowScreen(t *testing.T) {
	g := startGateway(t, true)
	tb := openTab(t, newBrowser(t))
	tb.do("a 375 px wide screen", chromedp.EmulateViewport(375, 812))
	tb.start(g.url)
	tb.waitProgress(flow[0])
	check := func(when string) {
		t.Helper()
		if overflow := eval[int](tb, `document.documentElement.scrollWidth - window.innerWidth`); overflow > 0 {
			t.Errorf("%s: the page is %d px wider than a 375 px screen", when, overflow)
		}
	}
	check("mid-flow")
	tb.screenshot("screenshot-flow-375.png")
	tb.completeFlow("FAIL")
	if outcome, _ := tb.waitResult(); outcome != "FAIL" {
		t.Fatalf("outcome %s", outcome)
	}
	check("result")
	tb.screenshot("screenshot-done-375.png")
	tb.checkConsole(false)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

// TestBrowserIncodeOrder: the flow sends its statuses in Incode's orders
// (a second ID, government validation, post-processing after the selfie
// check), pushed by webhooks; the page shows each, once, in the order it
// arrived, and finishes.
func TestBrowserIncodeOrder(t *testing.T) {
	g := startGatewayWith(t, true, pushgate.SimulatorConfig{Order: simulator.OrderIncode, Webhooks: true})
	tb := openTab(t, newBrowser(t))
	tb.start(g.url)
	path := simulator.Path(simulator.OrderIncode)
	tb.waitProgress(path[0])
	// Steps 1 and 3 each set two statuses; wait for the second.
	for i, last := range []string{simulator.StatusIDValidationFinishedSecondID, simulator.StatusGovernmentValidationFinished, simulator.StatusPostProcessingFinished} {
		tb.clickInFlow(flowButtons[i])
		tb.waitProgress(last)
	}
	tb.clickInFlow(`input[name=outcome][value="OK"]`)
	tb.clickInFlow("#finish")
	if outcome, _ := tb.waitResult(); outcome != "OK" {
		t.Fatalf("outcome %s, want OK", outcome)
	}
	if got := tb.progress(); !slices.Equal(got, path) {
		t.Fatalf("progress %v, want every status once, in the order it came: %v", got, path)
	}
	labels := eval[[]string](tb, `[...document.querySelectorAll('#progress li[data-status]')].map(li => li.textContent)`)
	for i, l := range labels {
		if l == path[i] {
			t.Errorf("status %s shown as its code, want words", l)
		}
	}
	tb.checkConsole(false)
}

// TestBrowserExpiredSession: the upstream forgets the session mid-flow,
// or reports it EXPIRED (its flow timeout ran out); the page closes the
// flow, says so, and its button starts a new session.
func TestBrowserExpiredSession(t *testing.T) {
	deleted := (*simulator.Simulator).Delete
	expired := func(s *simulator.Simulator, id string) error { return s.SetStatus(id, "EXPIRED") }
	for _, tc := range []struct {
		name    string
		polling bool
		end     func(*simulator.Simulator, string) error
	}{
		{"sse", false, deleted},
		{"polling", true, deleted},
		{"sse, EXPIRED", false, expired},
	} {
		polling := tc.polling
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, !polling)
			tb := openTab(t, newBrowser(t))
			tb.start(g.url)
			tb.waitProgress(flow[0])
			first := eval[string](tb, `document.getElementById('app-iframe').src`)
			id, _, _ := strings.Cut(first[strings.LastIndex(first, "/")+1:], "?") // /flow/{id}?key=...
			if err := tc.end(g.sim, id); err != nil {
				t.Fatal(err)
			}
			tb.do("waiting for the expired message", chromedp.WaitVisible(chromedp.CSS("#error")))
			msg := eval[string](tb, `document.getElementById('error-message').textContent`)
			button := eval[string](tb, `document.getElementById('retry').textContent`)
			if msg != "This verification session has expired." || button != "Start a new verification" {
				t.Fatalf("page says %q with button %q", msg, button)
			}
			if n := eval[int](tb, `document.querySelectorAll('#app-iframe').length`); n != 0 {
				t.Fatal("the iframe of the expired session is still there")
			}
			tb.do("starting again", chromedp.Click(chromedp.CSS("#retry")))
			tb.do("waiting for a new flow", chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
			if again := eval[string](tb, `document.getElementById('app-iframe').src`); again == first || !strings.Contains(again, "/flow/") {
				t.Fatalf("after starting again the iframe shows %q, want a new session's flow", again)
			}
			tb.waitProgress(flow[0])
			tb.checkConsole(polling) // polling mode: the switched-off stream fails to load
		})
	}
}
