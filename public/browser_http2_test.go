package public_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	pushgate "github.com/pushgate/pushgate/cmd/pushgate/gateway"
	"github.com/pushgate/pushgate/cmd/pushgate/gateway/tlstest"
	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
)

// tabsPerOrigin is more streams than a browser opens to one origin over
// HTTP/1.1 (six connections per host): the seventh would wait.
const tabsPerOrigin = 7

// TestBrowserSevenTabsOverHTTP2: with a certificate the gateway serves
// HTTP/2, so seven tabs of one origin in one Chromium all stream at once,
// and each sees the end of the flow.
func TestBrowserSevenTabsOverHTTP2(t *testing.T) {
	base, simURL := startTLSGateway(t)
	browser := newBrowser(t, chromedp.Flag("ignore-certificate-errors", true))

	first := openTab(t, browser)
	first.Do("starting a session", chromedp.Navigate(base+"/onboarding-url"))
	id := eval[string](first, `JSON.parse(document.body.innerText).interviewId`)

	tabs := []*tab{first}
	for len(tabs) < tabsPerOrigin {
		tabs = append(tabs, openTab(t, browser))
	}
	for i, tb := range tabs {
		tb.Do(fmt.Sprintf("tab %d: opening the stream", i+1),
			chromedp.Navigate(base+"/healthz"),
			chromedp.Evaluate[chromedp.Void](`window.got = [];
				const es = new EventSource('/events?interviewId=`+id+`');
				es.addEventListener('status', e => got.push(JSON.parse(e.data).onboardingStatus));`))
	}
	for i, tb := range tabs {
		if p := eval[string](tb, `performance.getEntriesByType('navigation')[0].nextHopProtocol`); p != "h2" {
			t.Errorf("tab %d loaded over %q, want h2", i+1, p)
		}
		if got := poll[[]string](tb, `got.length > 0 && got`); got[0] != flow.StatusUnknown {
			t.Fatalf("tab %d: first status %q, want UNKNOWN", i+1, got[0])
		}
	}
	resp, err := http.Post(simURL+"/sim/interviews/"+id+"/status", "application/json", strings.NewReader(`{"onboardingStatus":"ONBOARDING_FINISHED"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i, tb := range tabs {
		got := poll[[]string](tb, `got.includes('ONBOARDING_FINISHED') && got`)
		if strings.Join(got, " ") != "UNKNOWN ONBOARDING_FINISHED" {
			t.Errorf("tab %d: statuses %q, want UNKNOWN then ONBOARDING_FINISHED", i+1, got)
		}
		tb.CheckConsole(false)
	}
}

// startTLSGateway serves pushgate with the simulator on HTTPS with a
// self-signed certificate, as the command does with -tls-cert and
// -tls-key, and returns the gateway's and the simulator's URLs.
func startTLSGateway(t *testing.T) (base, simURL string) {
	t.Helper()
	certFile, keyFile := tlstest.NewPair(t, 1).Write(t, t.TempDir())
	ls, err := pushgate.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := pushgate.New(pushgate.Config{
		Secret: "browser-test-secret-0123456789ab",
		Poller: poller.Config{Interval: interval},
		TLS:    pushgate.TLSConfig{CertFile: certFile, KeyFile: keyFile},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, ls)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the gateway did not shut down")
		}
	})
	return gw.URL, gw.SimURL
}
