package simulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"
)

// The upstream's retry schedule of a failed webhook call: up to 5 retries,
// the first 30s after the failure, each wait 2.5 times the one before
// (about 32 minutes in all). Config.WebhookRetryScale shrinks the waits.
const (
	webhookRetries    = 5
	webhookFirstRetry = 30 * time.Second
	webhookBackoff    = 2.5
)

const (
	// webhookQueue is how many status changes may wait for their first call.
	webhookQueue = 4096
	// webhookPendingRetries caps the failed calls waiting for a retry; a
	// failure beyond it is given up on at once.
	webhookPendingRetries = 4096
)

// webhookCall is one status change to announce.
type webhookCall struct {
	InterviewID      string `json:"interviewId"`
	OnboardingStatus string `json:"onboardingStatus"`
	ExternalID       string `json:"externalId,omitempty"`
	ClientID         string `json:"clientId"`
	FlowID           string `json:"flowId"`
}

// webhooks sends each status change to the configured URL, as the
// upstream does: POST, authenticated as Config says. One goroutine makes
// the first calls, in the order of the changes. A failed call gets a
// goroutine of its own that retries it on the upstream's schedule, so a
// retry never holds later changes back: an older status can arrive after
// a newer one. close stops them all and waits for them (wg).
type webhooks struct {
	url, secret string
	headers     http.Header  // Config.WebhookHeaders
	oauth       *oauthClient // nil unless Config.WebhookTokenURL is set
	client      *http.Client
	firstRetry  time.Duration // webhookFirstRetry times Config.WebhookRetryScale
	sim         *Simulator
	queue       chan webhookCall
	retrySlots  chan struct{} // one per failed call waiting for a retry
	ctx         context.Context
	stop        context.CancelFunc
	wg          sync.WaitGroup // the sender and the retriers
}

func newWebhooks(cfg Config, s *Simulator) *webhooks {
	scale := cfg.WebhookRetryScale
	if !(scale > 0) || math.IsInf(scale, 0) { // zero, negative or NaN
		scale = 1
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &webhooks{
		url: cfg.WebhookURL, secret: cfg.WebhookSecret, headers: cfg.WebhookHeaders.Clone(),
		client:     &http.Client{Timeout: 5 * time.Second, Transport: webhookTransport(cfg.WebhookTLS)},
		firstRetry: time.Duration(float64(webhookFirstRetry) * scale),
		sim:        s,
		queue:      make(chan webhookCall, webhookQueue),
		retrySlots: make(chan struct{}, webhookPendingRetries),
		ctx:        ctx,
		stop:       stop,
	}
	if cfg.WebhookTokenURL != "" {
		w.oauth = &oauthClient{url: cfg.WebhookTokenURL, id: cfg.WebhookClientID, secret: cfg.WebhookClientSecret, sim: s}
	}
	w.wg.Add(1)
	go w.run()
	return w
}

// webhookTransport is the transport of the webhook calls: Go's default,
// or one of its clones with tlsConfig.
func webhookTransport(tlsConfig *tls.Config) http.RoundTripper {
	if tlsConfig == nil {
		return http.DefaultTransport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig
	return t
}

// announce queues a change; it never blocks (a full queue drops it, as a
// flaky upstream would).
func (w *webhooks) announce(c webhookCall, s *Simulator) {
	select {
	case w.queue <- c:
	default:
		s.log.Warn("simulator: webhook queue full; change not announced", "interview", c.InterviewID)
	}
}

// run makes the first call of each change, in order, and hands a failed
// one to a retrier of its own.
func (w *webhooks) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case c := <-w.queue:
			err := w.send(c)
			w.sim.countWebhook(true, err == nil)
			if err != nil && w.ctx.Err() == nil {
				w.retryLater(c, err)
			}
		}
	}
}

// retryLater starts the retries of a failed call, unless too many calls
// already wait for theirs. Called from run, which holds a count in wg, so
// wg.Add never races close's Wait.
func (w *webhooks) retryLater(c webhookCall, err error) {
	select {
	case w.retrySlots <- struct{}{}:
	default:
		w.sim.log.Warn("simulator: too many webhook calls wait for a retry; giving up on this one",
			"interview", c.InterviewID, "status", c.OnboardingStatus, "err", err)
		w.sim.countWebhookFailed()
		return
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.retrySlots }()
		w.retry(c)
	}()
}

// retry retries a failed call on the upstream's schedule until one
// succeeds, the retries run out, or close.
func (w *webhooks) retry(c webhookCall) {
	wait := w.firstRetry
	for range webhookRetries {
		t := time.NewTimer(wait)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := w.send(c)
		w.sim.countWebhook(false, err == nil)
		if err == nil || w.ctx.Err() != nil {
			return
		}
		w.sim.log.Info("simulator: webhook retry failed", "interview", c.InterviewID, "status", c.OnboardingStatus, "err", err)
		wait = time.Duration(float64(wait) * webhookBackoff)
	}
	w.sim.log.Warn("simulator: webhook failed on every retry; giving up",
		"interview", c.InterviewID, "status", c.OnboardingStatus, "retries", webhookRetries)
	w.sim.countWebhookFailed()
}

// send makes one webhook call. It succeeds on 200 with a JSON body, or on
// 204, as the upstream's webhooks do; anything else fails, a 401 also
// drops the OAuth token it carried.
func (w *webhooks) send(c webhookCall) error {
	body, _ := json.Marshal(c)
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for name, values := range w.headers {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "application/json")
	token := ""
	switch {
	case w.oauth != nil:
		if token, err = w.oauth.token(w.ctx, w.client); err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	case w.secret != "":
		req.Header.Set("Authorization", "Bearer "+w.secret)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return nil
	case resp.StatusCode == http.StatusOK && err == nil && json.Valid(answer):
		return nil
	case resp.StatusCode == http.StatusOK:
		return fmt.Errorf("webhook answered HTTP 200 without a JSON body (%d bytes)", len(answer))
	case resp.StatusCode == http.StatusUnauthorized && w.oauth != nil:
		w.oauth.forget(token) // refused before it expired: the retry fetches a new one
	}
	return fmt.Errorf("webhook answered HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// close stops the sender and the retriers and waits for them; changes
// still queued or waiting for a retry are not sent.
func (w *webhooks) close() {
	w.stop()
	w.wg.Wait()
	w.client.CloseIdleConnections()
}
