package public_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"

	"github.com/chromedp/chromedp"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream"
)

// The integration tests play an integrator's app: its own backend and page
// on another origin (http://localhost:<port>, while the gateway is on
// http://127.0.0.1:<port>: another site, too; the flow's iframe comes
// from localhost), pushgate started with
// -public-sessions=false and the app's origin in -allowed-origins. The
// backend starts (or imports) a session through the server API and hands
// the page {interviewId, token, url}; the page embeds the flow and follows
// it with client.js; at the end it shows the verdict, and the backend
// reads the full score.

const integrationAPIToken = "integration-api-token-0123456789"

// appPage is the integrator's page: the flow in an iframe, its statuses
// as they come, the verdict, and the backend's full score. {{.Client}} is
// how it loads client.js: as a classic script or as an ES module.
var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Acme onboarding</title>
{{if .Module}}<script type="module">
import { watchOnboarding, fetchVerdict } from '{{.Gateway}}/client.js';
run(watchOnboarding, fetchVerdict);
</script>{{else}}<script src="{{.Gateway}}/client.classic.js"></script>
<script>window.addEventListener('DOMContentLoaded', () => run(window.pushgate.watchOnboarding, window.pushgate.fetchVerdict));</script>{{end}}
<script>
async function run(watchOnboarding, fetchVerdict) {
  const gateway = '{{.Gateway}}';
  const s = await (await fetch('/start', { method: 'POST' })).json();
  const frame = document.createElement('iframe');
  frame.id = 'app-iframe';
  frame.src = s.url;
  frame.allow = 'camera; microphone; geolocation';
  frame.width = '100%';
  frame.height = '700';
  document.getElementById('flow').appendChild(frame);
  watchOnboarding({
    gateway, interviewId: s.interviewId, token: s.token, streamTimeout: 2000, requestTimeout: 3000,
    onTransport(t) { document.body.dataset.transport = t; },
    onStatus(status) {
      const li = document.createElement('li');
      li.dataset.status = status;
      li.textContent = status;
      document.getElementById('statuses').appendChild(li);
    },
    async onFinished() {
      frame.remove();
      const verdict = await fetchVerdict({ gateway, interviewId: s.interviewId, token: s.token });
      const full = await (await fetch('/result?interviewId=' + encodeURIComponent(s.interviewId))).json();
      const out = document.getElementById('verdict');
      out.dataset.verdict = verdict.status;
      out.dataset.overall = full.score.overall.status;
      out.dataset.sections = Object.keys(full.score).sort().join(',');
    },
    onError(err) { document.body.dataset.error = err.status + ' ' + err.message; },
    onEnd(reason) { document.body.dataset.end = reason; },
  });
}
</script></head>
<body><h1>Acme</h1><ol id="statuses"></ol><div id="flow"></div><p id="verdict"></p></body></html>`))

// app is the integrator's backend: its page, POST /start (a session from
// the server API, or one it started upstream itself and imports), and
// GET /result (the full score, from the server API).
type app struct {
	url     string // http://localhost:<port>
	gateway string
	imports bool // start sessions upstream and import them
	sim     *upstream.Client

	mu     sync.Mutex // protects tokens
	tokens []string   // the browser tokens handed to the page
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		appPage.Execute(w, map[string]any{"Gateway": a.gateway, "Module": a.imports})
	case "/start":
		body, err := a.start(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var s struct{ Token string }
		json.Unmarshal(body, &s)
		a.mu.Lock()
		a.tokens = append(a.tokens, s.Token)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	case "/result":
		body, err := a.call(r.Context(), http.MethodGet, "/v1/sessions/"+r.URL.Query().Get("interviewId"), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	case "/favicon.ico":
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// start gets a session for the page: {interviewId, token, url}.
func (a *app) start(ctx context.Context) ([]byte, error) {
	if !a.imports {
		return a.call(ctx, http.MethodPost, "/v1/sessions", map[string]any{"externalCustomerId": "acme-customer-7"})
	}
	s, err := a.sim.Start(ctx, upstream.StartOptions{ExternalCustomerID: "acme-customer-7"})
	if err != nil {
		return nil, err
	}
	url, err := a.sim.OnboardingURL(ctx, s)
	if err != nil {
		return nil, err
	}
	body, err := a.call(ctx, http.MethodPost, "/v1/sessions/import", map[string]string{"interviewId": s.InterviewID, "sessionToken": s.Token})
	if err != nil {
		return nil, err
	}
	var imported map[string]string
	if err := json.Unmarshal(body, &imported); err != nil {
		return nil, err
	}
	imported["url"] = url
	return json.Marshal(imported)
}

// call calls the gateway's server API with the API token.
func (a *app) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	var in io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.gateway+path, in)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+integrationAPIToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("%s %s: %s %s", method, path, resp.Status, out)
	}
	return out, err
}

// startApp starts the gateway as production runs it and the app beside
// it, on another origin it allows.
func startApp(t *testing.T, imports bool) (*app, *gateway) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &app{url: "http://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port), imports: imports}
	g := startGatewayConfig(t, true, func(c *pushgate.Config, ls *pushgate.Listeners) {
		c.HTTP = sse.Config{APITokens: []string{integrationAPIToken}, BackendSessionsOnly: true, AllowedOrigins: []string{a.url}}
		// The flow on the app's site, so the test can click in its iframe
		// (another site's iframe runs in another process, out of reach).
		c.Simulator.PublicURL = "http://localhost:" + fmt.Sprint(ls.Simulator.Addr().(*net.TCPAddr).Port)
	})
	a.gateway = g.url
	if a.sim, err = upstream.New(upstream.Config{BaseURL: g.simURL, APIKey: pushgate.SimulatorAPIKey, FlowID: "acme-flow"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(a.sim.Close)
	return a, g
}

// runApp opens the app's page, walks the flow (calling midFlow, when not
// nil, after its first step), and checks what its user and its backend
// see, and that no token went into a URL.
func runApp(t *testing.T, a *app, g *gateway, wantTransport string, midFlow func()) {
	t.Helper()
	tb := openTab(t, newBrowser(t))
	tb.Do("opening the app", chromedp.Navigate(a.url+"/"), chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
	tb.Do("waiting for the transport", chromedp.WaitVisible(chromedp.CSS(`body[data-transport="`+wantTransport+`"]`)))
	tb.waitStatus(steps[0])
	for i, button := range flowButtons[:3] {
		tb.ClickInFlow(button)
		tb.waitStatus(steps[i+1])
		if i == 0 && midFlow != nil {
			midFlow()
		}
	}
	tb.ClickInFlow(`input[name=outcome][value="WARN"]`)
	tb.ClickInFlow("#finish")
	tb.Do("waiting for the iframe to close", chromedp.WaitNotPresent(chromedp.CSS("#app-iframe")))
	tb.Do("waiting for the verdict", chromedp.WaitVisible(chromedp.CSS(`#verdict[data-verdict]`)))
	got := eval[map[string]string](tb, `({...document.getElementById('verdict').dataset})`)
	if got["verdict"] != "WARN" || got["overall"] != "WARN" || !strings.Contains(got["sections"], "idValidation") {
		t.Errorf("the page shows %v: want the verdict WARN, and the backend's full score", got)
	}
	statuses := eval[[]string](tb, `[...document.querySelectorAll('#statuses li')].map(li => li.dataset.status)`)
	if !slices.Equal(statuses, steps) {
		t.Errorf("statuses %v, want each once, in order: %v", statuses, steps)
	}
	if e := eval[string](tb, `document.body.dataset.error || document.body.dataset.end || ''`); e != "" {
		t.Errorf("the client reported %q", e)
	}
	a.mu.Lock()
	tokens := slices.Clone(a.tokens)
	a.mu.Unlock()
	if len(tokens) != 1 || tokens[0] == "" {
		t.Fatalf("the page got tokens %q, want one", tokens)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range g.urls {
		if strings.Contains(u, tokens[0]) || strings.Contains(strings.ToLower(u), "token") {
			t.Errorf("a token went into the URL %s", u)
		}
	}
	if n := g.requests["/onboarding-url"]; n != 0 {
		t.Errorf("the app's page called /onboarding-url %d times", n)
	}
	tb.CheckConsole(false)
}

// waitStatus waits for the app page's entry of status.
func (tb *tab) waitStatus(status string) {
	tb.t.Helper()
	tb.Do("waiting for status "+status, chromedp.WaitVisible(chromedp.CSS(`#statuses li[data-status="`+status+`"]`)))
}

// TestBrowserAppOnAnotherOrigin: a backend starts the session with
// POST /v1/sessions; the page loads the classic build of client.js from
// the gateway and streams over fetch with the token in a header. Its
// stream is dropped mid-flow: the client resumes with Last-Event-ID.
func TestBrowserAppOnAnotherOrigin(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	a, g := startApp(t, false)
	runApp(t, a, g, "stream", g.broker.EndStreams)
	if n := g.count("/onboarding-status"); n != 0 {
		t.Errorf("the client polled %d times while the stream worked", n)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.requests["/events"] != 2 || g.resumed != 1 {
		t.Errorf("%d streams, %d with Last-Event-ID: want the first, and one resumed after the drop", g.requests["/events"], g.resumed)
	}
}

// TestBrowserAppImportsSession: a backend that starts upstream sessions
// itself imports them; the page imports client.js as an ES module.
func TestBrowserAppImportsSession(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	a, g := startApp(t, true)
	runApp(t, a, g, "stream", nil)
	if n := g.sim.Stats().Start; n != 1 {
		t.Errorf("%d upstream sessions started, want the backend's one", n)
	}
}

// TestBrowserAppStreamBuffered: something between the page and the
// gateway buffers the stream; the client notices the silence and polls.
func TestBrowserAppStreamBuffered(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	a, g := startApp(t, false)
	g.mu.Lock()
	g.buffering = true
	g.mu.Unlock()
	runApp(t, a, g, "polling", nil)
	if g.count("/events") != 1 || g.count("/onboarding-status") == 0 {
		t.Errorf("requests %v: want one silent stream, then polling", g.requests)
	}
}
