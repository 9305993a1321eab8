package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pushgate/pushgate/public/browsertest"
)

// recorder is the test, but keeps the errors reported to it instead.
type recorder struct {
	testing.TB
	mu     sync.Mutex // protects errors
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestCheckConsole: CheckConsole reports a console.error and an uncaught
// exception, and a failed load unless the test allows failed loads; a
// page that only logs passes.
func TestCheckConsole(t *testing.T) {
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := map[string]string{
			"/log":       `<script>console.log('hello')</script>`,
			"/error":     `<script>console.error('boom')</script>`,
			"/exception": `<script>throw new Error('boom')</script>`,
			"/load":      `<img src="/missing">`,
		}[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>page</title><link rel="icon" href="data:,">`+body) // no favicon.ico load
	}))
	t.Cleanup(pages.Close)
	browser := browsertest.Start(t, browsertest.Chromium(t))
	for _, tc := range []struct {
		page             string
		allowFailedLoads bool
		want             []string // the start of each error reported, in order
	}{
		{"/log", false, nil},
		{"/error", false, []string{"console error: boom"}},
		{"/exception", true, []string{"uncaught exception: Uncaught Error: boom"}},
		{"/load", false, []string{"console error: Failed to load resource"}},
		{"/load", true, nil},
	} {
		t.Run(fmt.Sprint(tc.page, " allowFailedLoads=", tc.allowFailedLoads), func(t *testing.T) {
			rec := &recorder{TB: t}
			tb := browser.Open(rec)
			tb.Do("opening "+tc.page, chromedp.Navigate(pages.URL+tc.page))
			// Each page writes one message; wait for it to come.
			for deadline := time.Now().Add(15 * time.Second); len(tb.Messages()) == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s wrote nothing to the console", tc.page)
				}
			}
			tb.CheckConsole(tc.allowFailedLoads)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !slices.EqualFunc(rec.errors, tc.want, strings.HasPrefix) {
				t.Errorf("CheckConsole reported %q, want %q (console: %q)", rec.errors, tc.want, tb.Messages())
			}
		})
	}
}
