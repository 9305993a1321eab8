package public_test

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
)

// screen is a viewport the page is laid out for.
type screen struct {
	width, height int64
	suffix        string // of the screenshots' names
}

var screens = []screen{{1280, 800, ""}, {375, 812, "-375"}}

// shots names the screenshots of each outcome (PUSHGATE_SCREENSHOTS=docs
// writes those of the README and docs/).
var shots = map[string]string{"OK": "screenshot-done", "WARN": "screenshot-warn", "FAIL": "screenshot-fail"}

// layout is where the page's parts are, in CSS pixels.
type layout struct {
	ChipTops    []float64 `json:"chipTops"` // of the chips shown
	ChipHeight  float64   `json:"chipHeight"`
	ListHeight  float64   `json:"listHeight"` // #progress
	ListTop     float64   `json:"listTop"`
	TitleTop    float64   `json:"titleTop"`
	TitleBottom float64   `json:"titleBottom"`
	HeaderEnd   float64   `json:"headerEnd"`
	FrameTop    float64   `json:"frameTop"` // -1 without the iframe
	CurrentIn   bool      `json:"currentIn"`
}

const layoutJS = `(() => {
	const box = (el) => el.getBoundingClientRect();
	const list = document.getElementById('progress');
	const shown = [...list.children].filter((li) => li.checkVisibility());
	const cur = box(list.querySelector('.is-current')), l = box(list);
	const frame = document.getElementById('app-iframe');
	return {chipTops: shown.map((li) => box(li).top), chipHeight: box(shown[0]).height,
		listHeight: l.height, listTop: l.top, titleTop: box(document.querySelector('.topbar__title')).top,
		titleBottom: box(document.querySelector('.topbar__title')).bottom,
		headerEnd: box(document.querySelector('.topbar')).bottom, frameTop: frame ? box(frame).top : -1,
		currentIn: cur.left >= l.left - 1 && cur.right <= l.right + 1};
})()`

// checkOneRow fails unless the progress is one row of chips, beside the
// title on a wide screen and under it on a narrow one, with the current
// step in view, and the iframe, if any, right under the header.
func checkOneRow(t *testing.T, tb *tab, s screen, when string) {
	t.Helper()
	l := eval[layout](tb, layoutJS)
	for _, top := range l.ChipTops {
		if top != l.ChipTops[0] {
			t.Errorf("%s: chips at the tops %v, want one row", when, l.ChipTops)
			break
		}
	}
	if l.ListHeight != l.ChipHeight {
		t.Errorf("%s: #progress is %.1f px high, a chip %.1f px: want one row", when, l.ListHeight, l.ChipHeight)
	}
	if !l.CurrentIn {
		t.Errorf("%s: the current step is scrolled out of view", when)
	}
	if beside := l.ListTop < l.TitleBottom; beside != (s.width > 480) {
		t.Errorf("%s: progress at %.1f, the title from %.1f to %.1f: want it beside the title only on a wide screen", when, l.ListTop, l.TitleTop, l.TitleBottom)
	}
	if l.FrameTop >= 0 && l.FrameTop != l.HeaderEnd {
		t.Errorf("%s: the iframe starts at %.1f, want right under the header, at %.1f", when, l.FrameTop, l.HeaderEnd)
	}
}

// TestBrowserProgressOneRow: at 1280 and 375 px wide, through a whole flow
// and each outcome, the progress stays one row of chips and the iframe
// starts right under the header; the waiting chip never has a tick; the
// final chip stays neutral until the verdict, then takes its word and its
// colours, those of the result. With PUSHGATE_SCREENSHOTS it saves the
// screenshots of docs/: the flow, and each outcome, at each width.
func TestBrowserProgressOneRow(t *testing.T) {
	t.Parallel() // a gateway and a browser of its own; counts and orders only
	// Six sessions from one address: more than the default burst, and the
	// test must not wait for the limit to refill.
	g := startGatewayConfig(t, true, func(c *pushgate.Config, _ *pushgate.Listeners) { c.HTTP.SessionsPerMinute = -1 })
	browser := newBrowser(t)
	words := map[string]string{"OK": "Verified", "WARN": "Needs review", "FAIL": "Not verified"}
	for _, s := range screens {
		for _, outcome := range []string{"OK", "WARN", "FAIL"} {
			t.Run(fmt.Sprint(s.width, " ", outcome), func(t *testing.T) {
				tb := openTab(t, browser)
				tb.Do("sizing the screen", chromedp.EmulateViewport(s.width, s.height))
				tb.start(g.url)
				tb.waitProgress(steps[0])
				if c := waitingChip(tb); c.Tick {
					t.Errorf("the waiting chip %+v has a tick, want none before any step", c)
				}
				checkOneRow(t, tb, s, "waiting")
				var current chip // the look of a current step, mid-flow
				for i := range flowButtons[:3] {
					tb.step(i)
					if c := waitingChip(tb); c.Tick && !c.Hidden {
						t.Errorf("after %s the waiting chip %+v shows a tick", steps[i+1], c)
					}
					checkOneRow(t, tb, s, steps[i+1])
					if i == 0 {
						current = eval[chip](tb, `(`+chipJS+`)(document.querySelector('#progress .is-current'))`)
					}
					if i == 1 && outcome == "OK" {
						tb.screenshot("screenshot-flow" + s.suffix + ".png")
					}
				}

				// The verdict held back: the final chip is neutral meanwhile.
				release := g.hold(t, "/fetch-score")
				tb.ClickInFlow(`input[name=outcome][value="` + outcome + `"]`)
				tb.ClickInFlow("#finish")
				tb.waitProgress("ONBOARDING_FINISHED")
				if pending := finalChip(tb); pending.Verdict != "" || pending.Tick || pending.Border != current.Border || pending.Color != current.Color {
					t.Errorf("before the verdict the final chip is %+v, want a current step's look (%+v) without a tick or a verdict", pending, current)
				}
				release()

				if got, _ := tb.waitResult(); got != outcome {
					t.Fatalf("outcome %s, want %s", got, outcome)
				}
				final := finalChip(tb)
				result := eval[map[string]string](tb, `({border: getComputedStyle(document.getElementById('result')).borderTopColor,
					color: getComputedStyle(document.getElementById('result-title')).color})`)
				if final.Verdict != outcome || final.Text != words[outcome] || final.Border != result["border"] || final.Color != result["color"] {
					t.Errorf("final chip %+v, want verdict %s in words %q with the result's colours %v", final, outcome, words[outcome], result)
				}
				if outcome != "OK" && final.Tick {
					t.Errorf("the final chip ticks a %s verdict", outcome)
				}
				checkOneRow(t, tb, s, "result")
				tb.screenshot(shots[outcome] + s.suffix + ".png")
				tb.CheckConsole(false)
			})
		}
	}
}
