package public_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/public/browsertest"
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
var steps = simulator.Flow

// flowButtons are the simulator's flow page buttons, one per status after
// UNKNOWN.
var flowButtons = []string{"#capture-id", "#confirm-id", "#take-selfie", "#finish"}

// gateway is pushgate with the simulator, behind a middleware that counts
// the requests the page makes and can take /events away.
type gateway struct {
	url      string
	sim      *simulator.Simulator
	simURL   string
	broker   *sse.Broker
	eventsOn bool

	mu        sync.Mutex               // protects the fields below
	requests  map[string]int           // by path; CORS preflights by "OPTIONS <path>"
	urls      []string                 // every request's path and query, in order
	resumed   int                      // /events requests that carried Last-Event-ID
	buffering bool                     // /events answers are held back until they end
	held      map[string]chan struct{} // by path: requests wait for the channel's close (see hold)
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
	g := &gateway{sim: gw.Simulator, simURL: gw.SimURL, broker: gw.Broker, eventsOn: eventsOn, requests: map[string]int{}, held: map[string]chan struct{}{}}
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
		held := g.held[r.URL.Path]
		g.mu.Unlock()
		if held != nil {
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
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

// hold keeps the requests to path waiting (counted, but not answered)
// until release is called; the test's end releases them too.
func (g *gateway) hold(t *testing.T, path string) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	g.mu.Lock()
	g.held[path] = ch
	g.mu.Unlock()
	release = sync.OnceFunc(func() {
		g.mu.Lock()
		delete(g.held, path)
		g.mu.Unlock()
		close(ch)
	})
	t.Cleanup(release)
	return release
}

// newBrowser starts a headless Chromium (browsertest.Start), or skips
// the test without one. extra adds command-line options.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browsertest.Browser {
	t.Helper()
	return browsertest.Start(t, browsertest.Chromium(t), extra...)
}

// tab is a browser tab on the page, with the page's own steps; t is the
// test that opened it.
type tab struct {
	*browsertest.Tab
	t *testing.T
}

func openTab(t *testing.T, browser *browsertest.Browser) *tab {
	t.Helper()
	return &tab{Tab: browser.Open(t), t: t}
}

// eval is browsertest.Eval in the page's tab.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	return browsertest.Eval[T](tb.Tab, expr)
}

func (tb *tab) waitProgress(status string) {
	tb.t.Helper()
	tb.Do("waiting for progress "+status, chromedp.WaitVisible(chromedp.CSS(`#progress li[data-status="`+status+`"]`)))
}

// progress returns the statuses of the progress entries, in page order.
func (tb *tab) progress() []string {
	tb.t.Helper()
	return eval[[]string](tb, `[...document.querySelectorAll('#progress li[data-status]')].map(li => li.dataset.status)`)
}

// screenshot saves the page as dir/name when PUSHGATE_SCREENSHOTS=dir.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	dir := os.Getenv("PUSHGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := browsertest.Run(tb.Tab, "screenshot", chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// reload reloads the page; the new page's module has run when it returns.
func (tb *tab) reload() {
	tb.t.Helper()
	tb.Do("reloading the page", chromedp.Reload())
}

// start opens the page and waits for the flow's iframe.
func (tb *tab) start(url string) {
	tb.t.Helper()
	tb.Do("opening the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
}

// step clicks the flow's button i and waits for the page's progress entry
// of the status it sets.
func (tb *tab) step(i int) {
	tb.t.Helper()
	tb.ClickInFlow(flowButtons[i])
	tb.waitProgress(steps[i+1])
}

// completeFlow clicks through the simulator's flow, waiting for the page's
// progress entry of each status, and picks outcome before Finish. It
// returns when Finish was clicked.
func (tb *tab) completeFlow(outcome string) time.Time {
	tb.t.Helper()
	tb.waitProgress(steps[0])
	for i := range flowButtons[:3] {
		tb.step(i)
	}
	tb.ClickInFlow(`input[name=outcome][value="` + outcome + `"]`)
	tb.ClickInFlow("#finish")
	return time.Now()
}

// waitResult waits until the iframe is gone and the outcome is shown, and
// returns the outcome and its text.
func (tb *tab) waitResult() (outcome, text string) {
	tb.t.Helper()
	tb.Do("waiting for the iframe to close", chromedp.WaitNotPresent(chromedp.CSS("#app-iframe")))
	tb.Do("waiting for the result", chromedp.WaitVisible(chromedp.CSS("#result[data-outcome]")))
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

	tb.waitProgress(steps[0])
	for i := range flowButtons[:3] {
		tb.step(i)
	}
	tb.ClickInFlow(`input[name=outcome][value="OK"]`)
	finished := tb.clickAndTime("#finish")
	tb.Do("waiting for the iframe to close", chromedp.WaitNotPresent(chromedp.CSS("#app-iframe")))
	if took := time.Since(finished); took > time.Second {
		t.Errorf("the iframe closed %v after the last step, want within 1s", took)
	}
	outcome, text := tb.waitResult()
	if outcome != "OK" || !strings.Contains(text, "verified") {
		t.Errorf("result %s %q, want OK and a verified message", outcome, text)
	}
	if got := tb.progress(); !slices.Equal(got, steps) {
		t.Errorf("progress entries %v, want each status once, in order: %v", got, steps)
	}

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
	tb.CheckConsole(false)
}

// clickAndTime clicks in the flow and returns when the click happened.
func (tb *tab) clickAndTime(selector string) time.Time {
	tb.t.Helper()
	tb.ClickInFlow(selector)
	return time.Now()
}

func TestBrowserOutcomes(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
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
			tb.CheckConsole(false)
		})
	}
	if texts["OK"] == texts["WARN"] || texts["WARN"] == texts["FAIL"] || texts["OK"] == texts["FAIL"] {
		t.Fatalf("outcomes are not told apart: %q", texts)
	}
}

func TestBrowserFallsBackToPollingWithoutSSE(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGateway(t, false)
	tb := openTab(t, newBrowser(t))
	tb.start(g.url)
	tb.Do("waiting for polling", chromedp.WaitVisible(chromedp.CSS(`body[data-mode="polling"]`)))
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
	tb.CheckConsole(true)
}

func TestBrowserResumesAfterDroppedStreams(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGateway(t, true)
	tb := openTab(t, newBrowser(t))
	tb.start(g.url)
	tb.waitProgress(steps[0])
	tb.step(0)

	g.broker.EndStreams() // every stream dropped mid-flow
	tb.step(1)
	tb.step(2)
	tb.ClickInFlow("#finish")
	if outcome, _ := tb.waitResult(); outcome != "OK" {
		t.Fatalf("outcome %s, want OK", outcome)
	}
	g.mu.Lock()
	resumed := g.resumed
	g.mu.Unlock()
	if resumed == 0 {
		t.Fatal("the browser did not reconnect with Last-Event-ID")
	}
	if got := tb.progress(); !slices.Equal(got, steps) {
		t.Fatalf("progress %v, want each status once, in order", got)
	}
	if mode := eval[string](tb, `document.body.dataset.mode`); mode != "sse" {
		t.Errorf("transport %q after the reconnect, want sse", mode)
	}
	tb.CheckConsole(false)
}

func TestBrowserShowsErrorsInWords(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGateway(t, true)
	g.sim.SetFaults(simulator.Faults{ErrorRate: 1, Status: 503})
	tb := openTab(t, newBrowser(t))
	tb.Do("opening the page", chromedp.Navigate(g.url+"/"), chromedp.WaitVisible(chromedp.CSS("#error")))
	message := eval[string](tb, `document.getElementById('error').innerText`)
	if !strings.Contains(message, "couldn't start") || !strings.Contains(message, "unavailable") {
		t.Errorf("error %q, want words saying the start failed because the service is unavailable", message)
	}
	if n := eval[int](tb, `document.querySelectorAll('#app-iframe').length`); n != 0 {
		t.Errorf("%d iframes shown after a failed start", n)
	}
	g.sim.ClearFaults()
	tb.Do("retrying", chromedp.Click(chromedp.CSS("#retry")), chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
	if hidden := eval[bool](tb, `document.getElementById('error').hidden`); !hidden {
		t.Error("the error stays on screen after a successful retry")
	}
	tb.CheckConsole(true)
}

func TestBrowserManyTabsOneInterview(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGateway(t, true)
	browser := newBrowser(t)
	first := openTab(t, browser)
	began := time.Now() // the interview's upstream session starts after this
	first.start(g.url)
	first.waitProgress(steps[0])
	saved := eval[string](first, `sessionStorage.getItem('pushgate.session')`)
	if saved == "" {
		t.Fatal("the page kept no session to resume")
	}
	// Four more tabs of the same interview, as after duplicating the tab:
	// same session in sessionStorage, same cookie.
	tabs := []*tab{first}
	for range 4 {
		tb := openTab(t, browser)
		tb.Do("opening the page", chromedp.Navigate(g.url+"/healthz"),
			chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('pushgate.session', `+jsString(saved)+`)`),
			chromedp.Navigate(g.url+"/"), chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
		tb.waitProgress(steps[0])
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
		tb.CheckConsole(false)
	}
}

func TestBrowserNarrowScreen(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGateway(t, true)
	tb := openTab(t, newBrowser(t))
	tb.Do("a 375 px wide screen", chromedp.EmulateViewport(375, 812))
	tb.start(g.url)
	tb.waitProgress(steps[0])
	check := func(when string) {
		t.Helper()
		if overflow := eval[int](tb, `document.documentElement.scrollWidth - window.innerWidth`); overflow > 0 {
			t.Errorf("%s: the page is %d px wider than a 375 px screen", when, overflow)
		}
	}
	check("mid-flow")
	tb.completeFlow("FAIL")
	if outcome, _ := tb.waitResult(); outcome != "FAIL" {
		t.Fatalf("outcome %s", outcome)
	}
	check("result")
	tb.CheckConsole(false)
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
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGatewayWith(t, true, pushgate.SimulatorConfig{Order: simulator.OrderIncode, Webhooks: true})
	tb := openTab(t, newBrowser(t))
	tb.start(g.url)
	path := simulator.Path(simulator.OrderIncode)
	tb.waitProgress(path[0])
	// Steps 1 and 3 each set two statuses; wait for the second.
	for i, last := range []string{simulator.StatusIDValidationFinishedSecondID, simulator.StatusGovernmentValidationFinished, simulator.StatusPostProcessingFinished} {
		tb.ClickInFlow(flowButtons[i])
		tb.waitProgress(last)
	}
	tb.ClickInFlow(`input[name=outcome][value="OK"]`)
	tb.ClickInFlow("#finish")
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
	tb.CheckConsole(false)
}

// TestBrowserExpiredSession: the upstream forgets the session mid-flow,
// or reports it EXPIRED (its flow timeout ran out); the page closes the
// flow, says so, and its button starts a new session.
func TestBrowserExpiredSession(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
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
			tb.waitProgress(steps[0])
			first := eval[string](tb, `document.getElementById('app-iframe').src`)
			id, _, _ := strings.Cut(first[strings.LastIndex(first, "/")+1:], "?") // /flow/{id}?key=...
			if err := tc.end(g.sim, id); err != nil {
				t.Fatal(err)
			}
			tb.Do("waiting for the expired message", chromedp.WaitVisible(chromedp.CSS("#error")))
			msg := eval[string](tb, `document.getElementById('error-message').textContent`)
			button := eval[string](tb, `document.getElementById('retry').textContent`)
			if msg != "This verification session has expired." || button != "Start a new verification" {
				t.Fatalf("page says %q with button %q", msg, button)
			}
			if n := eval[int](tb, `document.querySelectorAll('#app-iframe').length`); n != 0 {
				t.Fatal("the iframe of the expired session is still there")
			}
			// A reload says so again, and starts nothing by itself.
			starts := g.sim.Stats().Start
			tb.reload()
			tb.Do("waiting for the expired message again", chromedp.WaitVisible(chromedp.CSS("#error")))
			shown := eval[string](tb, `document.getElementById('error-message').textContent + ' / ' + document.getElementById('retry').textContent`)
			if shown != msg+" / "+button || eval[int](tb, `document.querySelectorAll('#app-iframe').length`) != 0 {
				t.Fatalf("after a reload the page says %q, want %q with no flow", shown, msg+" / "+button)
			}
			if n := g.sim.Stats().Start - starts; n != 0 || g.count("/onboarding-url") != 1 {
				t.Fatalf("the reload started %d upstream sessions (%d /onboarding-url calls), want none", n, g.count("/onboarding-url")-1)
			}
			tb.Do("starting again", chromedp.Click(chromedp.CSS("#retry")))
			tb.Do("waiting for a new flow", chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
			if again := eval[string](tb, `document.getElementById('app-iframe').src`); again == first || !strings.Contains(again, "/flow/") {
				t.Fatalf("after starting again the iframe shows %q, want a new session's flow", again)
			}
			tb.waitProgress(steps[0])
			tb.CheckConsole(polling) // polling mode: the switched-off stream fails to load
		})
	}
}
