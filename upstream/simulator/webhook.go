package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// webhookQueue is how many status changes may wait for the webhook sender.
const webhookQueue = 4096

// webhookCall is one status change to announce.
type webhookCall struct {
	InterviewID      string `json:"interviewId"`
	OnboardingStatus string `json:"onboardingStatus"`
	ExternalID       string `json:"externalId,omitempty"`
	ClientID         string `json:"clientId"`
	FlowID           string `json:"flowId"`
}

// webhooks sends each status change to the configured URL, as the
// upstream does: POST, authenticated as Config says, one retry after a
// failure or a non-200 answer. One goroutine sends them in the order they
// happened; it alone touches the OAuth token.
type webhooks struct {
	url, secret string
	oauth       *oauthClient // nil unless Config.WebhookTokenURL is set
	client      *http.Client
	retryAfter  time.Duration
	queue       chan webhookCall
	stop        context.CancelFunc
	done        chan struct{}
}

func newWebhooks(cfg Config, s *Simulator) *webhooks {
	ctx, stop := context.WithCancel(context.Background())
	w := &webhooks{
		url: cfg.WebhookURL, secret: cfg.WebhookSecret,
		client:     &http.Client{Timeout: 5 * time.Second},
		retryAfter: time.Second,
		queue:      make(chan webhookCall, webhookQueue),
		stop:       stop,
		done:       make(chan struct{}),
	}
	if cfg.WebhookTokenURL != "" {
		w.oauth = &oauthClient{url: cfg.WebhookTokenURL, id: cfg.WebhookClientID, secret: cfg.WebhookClientSecret, sim: s}
	}
	go w.run(ctx, s)
	return w
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

func (w *webhooks) run(ctx context.Context, s *Simulator) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-w.queue:
			if err := w.send(ctx, c); err != nil && ctx.Err() == nil {
				timer := time.NewTimer(w.retryAfter)
				select {
				case <-ctx.Done():
					timer.Stop()
					return
				case <-timer.C:
				}
				if err := w.send(ctx, c); err != nil {
					s.log.Warn("simulator: webhook failed twice; giving up", "interview", c.InterviewID, "err", err)
				}
			}
			s.countWebhook()
		}
	}
}

func (w *webhooks) send(ctx context.Context, c webhookCall) error {
	body, _ := json.Marshal(c)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	switch {
	case w.oauth != nil:
		token, err := w.oauth.token(ctx, w.client)
		if err != nil {
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
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized && w.oauth != nil {
		w.oauth.forget() // refused before it expired: the retry fetches a new one
	}
	if resp.StatusCode != http.StatusOK {
		return &webhookError{code: resp.StatusCode}
	}
	return nil
}

type webhookError struct{ code int }

func (e *webhookError) Error() string { return "webhook answered HTTP " + http.StatusText(e.code) }

// close stops the sender; changes still queued are not sent.
func (w *webhooks) close() {
	w.stop()
	<-w.done
	w.client.CloseIdleConnections()
}
