package public_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
)

// The page starts an upstream session (a paid one, with a real upstream)
// only on a first visit, with nothing stored in the tab, or on a click.
// These tests count the simulator's session starts around reloads.

// TestBrowserReloadKeepsTheResult: a reload mid-flow resumes the same flow;
// a reload of the finished page shows the verdict again, without the flow
// and without fetching it again; one from before the verdict came fetches
// it. None starts an upstream session. "Start a new verification" does.
func TestBrowserReloadKeepsTheResult(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGateway(t, true)
	tb := openTab(t, newBrowser(t))
	tb.start(g.url)
	tb.waitProgress(steps[0])
	tb.step(0)
	first := eval[string](tb, `document.getElementById('app-iframe').src`)

	tb.reload()
	tb.Do("waiting for the resumed flow", chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
	tb.waitProgress(steps[1])
	if src := eval[string](tb, `document.getElementById('app-iframe').src`); src != first {
		t.Fatalf("after a reload mid-flow the iframe shows %q, want the same flow %q", src, first)
	}
	tb.step(1)
	tb.step(2)
	tb.ClickInFlow(`input[name=outcome][value="WARN"]`)
	tb.ClickInFlow("#finish")
	if outcome, _ := tb.waitResult(); outcome != "WARN" {
		t.Fatalf("outcome %s, want WARN", outcome)
	}
	starts, scores := g.sim.Stats().Start, g.count("/fetch-score")
	if starts != 1 || g.count("/onboarding-url") != 1 {
		t.Fatalf("%d upstream starts and %d /onboarding-url calls for one flow, want 1 and 1", starts, g.count("/onboarding-url"))
	}

	tb.reload()
	if outcome, text := tb.waitResult(); outcome != "WARN" || !strings.Contains(text, "review") {
		t.Fatalf("after a reload the result is %s %q, want WARN again", outcome, text)
	}
	if chip := finalChip(tb); chip.Verdict != "WARN" {
		t.Errorf("after a reload the final chip is %+v, want the WARN verdict", chip)
	}
	if n := g.count("/fetch-score") - scores; n != 0 {
		t.Errorf("the reload fetched the verdict %d times, want none: this tab knew it", n)
	}

	// A reload from before the verdict came: the tab knows only the finish.
	tb.Do("forgetting the verdict", chromedp.Evaluate[chromedp.Void](`(() => {
		const r = JSON.parse(sessionStorage.getItem('pushgate.session'));
		delete r.verdict;
		sessionStorage.setItem('pushgate.session', JSON.stringify(r)); })()`))
	tb.reload()
	if outcome, _ := tb.waitResult(); outcome != "WARN" {
		t.Fatalf("after a reload before the verdict, the result is %s, want WARN", outcome)
	}
	if n := g.count("/fetch-score") - scores; n != 1 {
		t.Errorf("the reload before the verdict fetched it %d times, want 1", n)
	}
	if n := g.sim.Stats().Start - starts; n != 0 || g.count("/onboarding-url") != 1 {
		t.Fatalf("reloads started %d upstream sessions (%d /onboarding-url calls in all), want none", n, g.count("/onboarding-url"))
	}

	tb.Do("starting over", chromedp.Click(chromedp.CSS("#start-over")), chromedp.WaitVisible(chromedp.CSS("#app-iframe")))
	tb.waitProgress(steps[0])
	if src := eval[string](tb, `document.getElementById('app-iframe').src`); src == first {
		t.Fatal("Start a new verification shows the old flow again")
	}
	if n := g.sim.Stats().Start - starts; n != 1 {
		t.Fatalf("Start a new verification started %d upstream sessions, want 1", n)
	}
	if hidden := eval[bool](tb, `document.getElementById('result').hidden`); !hidden {
		t.Error("the old result stays on screen with the new flow")
	}
	tb.CheckConsole(false)
}

// TestBrowserBackendSessionsOnly: with -public-sessions=false the gateway
// refuses /onboarding-url with the code backend_sessions_only, for API
// callers; the page tells end users, without the flag, to go back to the
// site that sent them, and offers no button that could never work.
func TestBrowserBackendSessionsOnly(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	g := startGatewayConfig(t, true, func(c *pushgate.Config, _ *pushgate.Listeners) {
		c.HTTP.APITokens = []string{"browser-test-api-token-0123456789"}
		c.HTTP.BackendSessionsOnly = true
	})
	resp, err := http.Get(g.url + "/onboarding-url")
	if err != nil {
		t.Fatal(err)
	}
	var refusal struct{ Error, Code string }
	json.NewDecoder(resp.Body).Decode(&refusal)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || refusal.Code != "backend_sessions_only" || !strings.Contains(refusal.Error, "POST /v1/sessions") {
		t.Fatalf("/onboarding-url: %s %+v, want 404, code backend_sessions_only and words for the API caller", resp.Status, refusal)
	}

	tb := openTab(t, newBrowser(t))
	tb.Do("opening the page", chromedp.Navigate(g.url+"/"), chromedp.WaitVisible(chromedp.CSS("#error")))
	text := eval[string](tb, `document.body.innerText`)
	if strings.Contains(text, "-public-sessions") || strings.Contains(text, "/v1/sessions") || !strings.Contains(text, "site that sent you here") {
		t.Errorf("the page says %q, want plain words sending the user back, without flags or routes", text)
	}
	if buttons := eval[[]string](tb, `[...document.querySelectorAll('button')].filter(b => b.checkVisibility()).map(b => b.textContent)`); len(buttons) != 0 {
		t.Errorf("the page shows the buttons %q, want none: trying again cannot work", buttons)
	}
	if n := eval[int](tb, `document.querySelectorAll('#app-iframe').length`); n != 0 {
		t.Errorf("%d iframes shown", n)
	}
	if n := g.sim.Stats().Start; n != 0 {
		t.Errorf("%d upstream sessions started, want none", n)
	}
	tb.CheckConsole(true) // Chromium logs the 404 as a failed load
}

// chip is a progress chip as the page shows it.
type chip struct {
	Status  string `json:"status"`
	Verdict string `json:"verdict"`
	Text    string `json:"text"`
	Tick    bool   `json:"tick"`   // its marker is a tick
	Border  string `json:"border"` // computed colours
	Color   string `json:"color"`
	Hidden  bool   `json:"hidden"`
}

// chipJS reads the chip li as a chip.
const chipJS = `(li) => li && {status: li.dataset.status, verdict: li.dataset.verdict || '', text: li.textContent,
	tick: getComputedStyle(li, '::before').content.includes('✓'), hidden: !li.checkVisibility(),
	border: getComputedStyle(li).borderTopColor, color: getComputedStyle(li).color}`

// finalChip returns the ONBOARDING_FINISHED chip.
func finalChip(tb *tab) chip {
	tb.t.Helper()
	return eval[chip](tb, `(`+chipJS+`)(document.querySelector('#progress li[data-status="ONBOARDING_FINISHED"]')) || {}`)
}

// waitingChip returns the UNKNOWN chip.
func waitingChip(tb *tab) chip {
	tb.t.Helper()
	return eval[chip](tb, `(`+chipJS+`)(document.querySelector('#progress li[data-status="UNKNOWN"]')) || {}`)
}
