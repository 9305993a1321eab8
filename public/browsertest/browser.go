package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the browser to run, or skips the test when
// there is none; under CI=true a missing browser fails the test instead.
func Chromium(t testing.TB) string {
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

// Browser is a running headless Chromium; its tabs share its cookies and
// its connections to each origin.
type Browser struct {
	ctx context.Context // its first tab's, the parent of every other tab's
}

// Start starts the Chromium at chrome (see Chromium), headless, in a 1280
// by 860 window, with a fresh profile and kept from calling out to the
// internet. extra adds command-line options, or replaces defaults
// (chromedp.WindowSize). The test's end stops it.
func Start(t testing.TB, chrome string, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
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
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return &Browser{ctx: ctx}
}

// Open opens a new tab, which collects its page's console messages from
// now on. The end of the test t (a subtest's, say) closes it.
func (b *Browser) Open(t testing.TB) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb := &Tab{t: t, ctx: ctx, done: make(chan struct{})}
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
