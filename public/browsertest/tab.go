package browsertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Tab is a tab of a Browser, and the console messages its page wrote. Its
// methods fail the test that opened it on error, and are called from that
// test's goroutine.
type Tab struct {
	// Timeout bounds each of the tab's calls (Do, Run, Eval, Poll,
	// ClickInFlow); it only turns a hang into a failure. Zero means 15 s.
	Timeout time.Duration

	t    testing.TB
	ctx  context.Context
	done chan struct{} // closed when console collection ended

	mu      sync.Mutex // protects console
	console []chromedp.ConsoleMessage
}

// bounded returns the tab's context bounded by its Timeout.
func (tb *Tab) bounded() (context.Context, context.CancelFunc) {
	d := tb.Timeout
	if d == 0 {
		d = 15 * time.Second
	}
	return context.WithTimeout(tb.ctx, d)
}

// Do runs actions and fails the test on error, saying what it was doing
// and what the console holds.
func (tb *Tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v (console: %v)", what, err, tb.Messages())
	}
}

// Run runs action and returns its result; it fails the test on error,
// saying what it was doing.
func Run[T any](tb *Tab, what string, action chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Eval returns the value of the JavaScript expression expr in the page.
func Eval[T any](tb *Tab, expr string) T {
	tb.t.Helper()
	return Run(tb, "evaluating "+expr, chromedp.Evaluate[T](expr))
}

// Poll waits until the JavaScript expression expr is truthy in the page,
// and returns its value.
func Poll[T any](tb *Tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr))
	if err != nil {
		tb.t.Fatalf("waiting for %s: %v (console: %v)", expr, err, tb.Messages())
	}
	return v
}

// ClickInFlow clicks an element of the flow's page in the iframe that
// pushgate's page and client put on a page (#app-iframe). The flow is on
// another origin: the test reaches into it only while it is of the same
// site (127.0.0.1, localhost), so in the same renderer process.
func (tb *Tab) ClickInFlow(selector string) {
	tb.t.Helper()
	ctx, cancel := tb.bounded()
	defer cancel()
	frames, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("#app-iframe")))
	if err != nil || len(frames) != 1 {
		tb.t.Fatalf("finding #app-iframe: %v (%d found)", err, len(frames))
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector), chromedp.FromNode(frames[0]))); err != nil {
		tb.t.Fatalf("clicking %s in the flow: %v", selector, err)
	}
}

// Messages returns the console messages so far, each with where it came
// from.
func (tb *Tab) Messages() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.console {
		out = append(out, m.String()+" ("+m.Source+" "+m.URL+")")
	}
	return out
}

// CheckConsole fails the test on each uncaught exception and console
// error so far: a CSP violation, a CORS refusal, a failed load, a
// console.error. A test that makes a server fail on purpose passes
// allowFailedLoads: Chromium then logs "Failed to load resource" for the
// answers it meant, and no page can keep it from doing so.
func (tb *Tab) CheckConsole(allowFailedLoads bool) {
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
