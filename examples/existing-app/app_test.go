package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/public/browsertest"
)

// flow is the simulator's flow, one status per step of its flow page
// (docs/simulator.md, the steps order), and flowButtons the buttons that
// set the statuses after the first.
var (
	flow        = []string{"UNKNOWN", "ID_VALIDATION_FINISHED", "POST_PROCESSING_FINISHED", "FACE_VALIDATION_FINISHED", "ONBOARDING_FINISHED"}
	flowButtons = []string{"#capture-id", "#confirm-id", "#take-selfie"}
)

// patience bounds each wait for something the test expects to happen; it
// only turns a hang into a failure, and is far above what any step takes.
const patience = time.Minute

// TestExistingApp runs the example as `go run ./examples/existing-app`
// does (run, with pushgate as a child process), on free ports, and walks
// its page in Chromium through a verification in Spanish: the page shows
// each status once and in order in an iframe of the right height, closes
// the iframe and shows the verdict; the backend holds the full score, and
// the relay brought it every status and one session.ended.
func TestExistingApp(t *testing.T) {
	chrome := browsertest.Chromium(t)
	o := options{
		addr:        "127.0.0.1:0",
		gateway:     "start",
		gatewayAddr: testenv.FreeAddr(t),
		simAddr:     testenv.FreeAddr(t),
		pushgate:    buildPushgate(t),
	}
	app := startApp(t, o)
	tb := browsertest.Start(t, chrome).Open(t)
	tb.Timeout = patience

	// The Start button is enabled once client.js has loaded from pushgate;
	// otherwise the page says why.
	tb.Do("opening the page", chromedp.Navigate(app), chromedp.WaitVisible(chromedp.CSS("#start-button:enabled, #error:not([hidden])")))
	if e := browsertest.Eval[string](tb, `document.getElementById('error').textContent`); e != "" {
		t.Fatalf("the page shows the error %q (console: %v)", e, tb.Messages())
	}
	tb.Do("starting in Spanish", chromedp.SetValue(chromedp.CSS("#language"), "es-ES"), chromedp.Click(chromedp.CSS("#start-button")))
	tb.Do("waiting for the flow", chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
	size := browsertest.Eval[map[string]float64](tb, `({frame: document.getElementById('app-iframe').getBoundingClientRect().height,
		box: document.getElementById('app').getBoundingClientRect().height, viewport: innerHeight})`)
	if want := min(0.8*size["viewport"], 720); size["box"] < want-1 || size["box"] > want+1 || size["frame"] != size["box"] {
		t.Errorf("the iframe is %v px high in a %v px container, want it to fill the container, min(80vh, 720px) = %v px", size["frame"], size["box"], want)
	}
	src, err := url.Parse(browsertest.Eval[string](tb, `document.getElementById('app-iframe').src`))
	if err != nil || !strings.HasPrefix(src.Path, "/flow/") {
		t.Fatalf("iframe src %v (%v), want the simulator's flow page", src, err)
	}
	id := strings.TrimPrefix(src.Path, "/flow/")

	waitStep(t, tb, flow[0])
	for i, button := range flowButtons {
		tb.ClickInFlow(button)
		waitStep(t, tb, flow[i+1])
	}
	tb.ClickInFlow(`input[name=outcome][value="WARN"]`)
	tb.ClickInFlow("#finish")
	tb.Do("waiting for the iframe to close", chromedp.WaitNotPresent(chromedp.CSS("#app-iframe")))
	tb.Do("waiting for the verdict", chromedp.WaitVisible(chromedp.CSS("#result[data-verdict]")))
	if v := browsertest.Eval[string](tb, `document.getElementById('result').dataset.verdict`); v != "WARN" {
		t.Errorf("the page shows the verdict %q, want WARN", v)
	}
	if got := browsertest.Eval[[]string](tb, `[...document.querySelectorAll('#progress li')].map(li => li.dataset.status)`); !slices.Equal(got, flow) {
		t.Errorf("the page showed the steps %v, want each status once, in order: %v", got, flow)
	}
	if e := browsertest.Eval[string](tb, `document.getElementById('error').textContent`); e != "" {
		t.Errorf("the page shows the error %q", e)
	}
	tb.CheckConsole(false)

	// The session started in the language the page asked for.
	var sim struct{ Start struct{ Language string } }
	getJSON(t, "http://"+o.simAddr+"/sim/interviews/"+id, &sim)
	if sim.Start.Language != "es-ES" {
		t.Errorf("the upstream session started in %q, want es-ES", sim.Start.Language)
	}

	// The backend holds the full score, and the relay's events: Incode's
	// webhooks (upstream) for each change, pushgate's session.status for
	// each status the page saw, then one session.ended. Events of one
	// interview come in order, but the last webhook may come after
	// session.ended when pushgate's poller saw the end first: wait for all.
	wantEvents := len(flow) - 1 + len(flow) + 1 // webhooks, session.status, session.ended
	rec := waitRecord(t, app, id, func(r record) bool { return len(r.Events) >= wantEvents })
	var overall struct {
		Overall  struct{ Status string }
		Liveness struct{ Overall struct{ Status string } }
	}
	if err := json.Unmarshal(rec.Score, &overall); err != nil || rec.Verdict != "WARN" || overall.Overall.Status != "WARN" || overall.Liveness.Overall.Status != "WARN" {
		t.Errorf("the backend holds verdict %q and score %s (%v): want WARN, and the whole score", rec.Verdict, rec.Score, err)
	}
	if rec.CustomerID != customerID || rec.Language != "es-ES" {
		t.Errorf("the backend holds customer %q, language %q", rec.CustomerID, rec.Language)
	}
	var upstream, statuses []string
	var ended []event
	for _, e := range rec.Events {
		switch {
		case e.Kind == "upstream":
			upstream = append(upstream, e.OnboardingStatus)
		case e.Kind == "status" && e.Type == "session.status":
			if len(ended) > 0 {
				t.Errorf("session.status %s came after session.ended", e.OnboardingStatus)
			}
			statuses = append(statuses, e.OnboardingStatus)
		case e.Kind == "ended" && e.Type == "session.ended":
			ended = append(ended, e)
		default:
			t.Errorf("unexpected event %+v", e)
		}
	}
	if !slices.Equal(upstream, flow[1:]) || !slices.Equal(statuses, flow) {
		t.Errorf("relayed webhooks %v and session.status %v: want each change, in order", upstream, statuses)
	}
	if len(ended) != 1 || ended[0].Reason != "finished" || ended[0].Verdict != "WARN" || ended[0].ExternalID != customerID {
		t.Errorf("session.ended events %+v: want one, finished, WARN, for %s", ended, customerID)
	}
}

// startApp runs the app (and pushgate) as main does, and returns the
// page's URL. The test's end stops both, and checks they stopped cleanly.
func startApp(t *testing.T, o options) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testenv.Buffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, logs, func(url string) { ready <- url }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the app and pushgate stopped with: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
		if strings.Contains(logs.String(), "level=ERROR") {
			t.Errorf("pushgate logged an error")
		}
		if t.Failed() {
			t.Logf("the app's and pushgate's log:\n%s", logs)
		}
	})
	select {
	case url := <-ready:
		return url
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
		return ""
	}
}

// waitRecord returns the backend's record of id once done says it is.
func waitRecord(t *testing.T, app, id string, done func(record) bool) record {
	t.Helper()
	var rec record
	for deadline := time.Now().Add(patience); ; {
		getJSON(t, app+"results/"+id, &rec)
		if done(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend's record of %s is still %+v", id, rec)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// buildPushgate builds pushgate into the test's temporary directory.
func buildPushgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pushgate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/pushgate/pushgate/cmd/pushgate").CombinedOutput(); err != nil {
		t.Fatalf("building pushgate: %v\n%s", err, out)
	}
	return bin
}

// waitStep waits for the page's progress entry of status.
func waitStep(t *testing.T, tb *browsertest.Tab, status string) {
	t.Helper()
	tb.Do("waiting for the step "+status, chromedp.WaitVisible(chromedp.CSS(`#progress li[data-status="`+status+`"]`)))
}
