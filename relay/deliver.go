package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pushgate/pushgate/internal/backoff"
	"github.com/pushgate/pushgate/upstream"
)

// outcome is what an attempt's answer means.
type outcome int

const (
	delivered outcome = iota // 2xx
	retry                    // a network error, a timeout, 408, 429 or 5xx: try again later
	fail                     // any other answer (4xx, a redirect): trying again would not help
)

// attempt is the result of one attempt to send a delivery.
type attempt struct {
	outcome    outcome
	err        string        // why it was not delivered
	retryAfter time.Duration // the receiver's Retry-After; zero when none
}

// newClient is the HTTP client of the deliveries: each attempt cut at
// timeout, and redirects not followed (a receiver that redirects fails:
// its URL is misconfigured, and a redirect would carry the event, signed,
// wherever the receiver says).
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: timeout,
		},
	}
}

// send makes one attempt to deliver body as d, signed now; Close cuts it.
func (r *Relay) send(d Delivery, body []byte) attempt {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodPost, d.Target, bytes.NewReader(body))
	if err != nil {
		return attempt{outcome: fail, err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pushgate-relay")
	req.Header.Set("Pushgate-Event-Kind", d.Kind)
	for k, v := range r.signer.headers(d.ID, time.Now(), body) {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // without the URL: its query may hold a secret
			err = ue.Err
		}
		return attempt{outcome: retry, err: err.Error()}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	return judge(resp)
}

// judge says what an answer means: 2xx delivered; 408, 429 and 5xx
// retried (after Retry-After, when the answer gives one); anything else
// failed.
func judge(resp *http.Response) attempt {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return attempt{outcome: delivered}
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return attempt{outcome: retry, err: "HTTP " + strconv.Itoa(code), retryAfter: upstream.RetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	case code >= 300 && code < 400:
		return attempt{outcome: fail, err: fmt.Sprintf("HTTP %d: redirects are not followed (to %q)", code, resp.Header.Get("Location"))}
	}
	return attempt{outcome: fail, err: "HTTP " + strconv.Itoa(code)}
}

// backoff is the wait before attempt n+1 after n failed ones (see
// backoff.Delay): from BackoffMin up to BackoffMax.
func (r *Relay) backoff(n int) time.Duration {
	return backoff.Delay(r.cfg.BackoffMin, r.cfg.BackoffMax, n)
}

// dispatch runs in its own goroutine until Close: it claims due
// deliveries and starts one goroutine per delivery, Workers at most.
func (r *Relay) dispatch() {
	defer r.wg.Done()
	slots := make(chan struct{}, r.cfg.Workers)
	poll := time.NewTicker(r.cfg.Poll)
	defer poll.Stop()
	for {
		select {
		case slots <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		select {
		case <-poll.C: // on a busy queue too, events waiting in memory get in
			r.unspill()
		default:
		}
		d, ok, err := r.queue.Next(r.ctx, time.Now())
		if err != nil || !ok {
			<-slots
			if err != nil && r.ctx.Err() == nil {
				r.cfg.Logger.Debug("relay: the queue is out of reach", "err", err)
			}
			select {
			case <-r.wake:
			case <-poll.C:
				r.unspill()
			case <-r.ctx.Done():
				return
			}
			continue
		}
		r.wg.Add(1) // dispatch is counted: Close has not returned
		go func() {
			defer r.wg.Done()
			defer func() { <-slots }()
			r.deliver(d)
		}()
	}
}

// deliver makes one attempt at d and settles it: done, retried later, or
// failed.
func (r *Relay) deliver(d Delivery) {
	if d.Body == nil && d.End != nil {
		body, err := r.endedBody(d)
		if r.ctx.Err() != nil {
			r.reschedule(d) // cut by Close
			return
		}
		if err != nil {
			d.Attempts++ // an attempt that failed before it was sent: the wait grows
			r.settle(d, attempt{outcome: retry, err: "reading the verdict: " + err.Error()})
			return
		}
		d.Body = body
	}
	if time.Since(d.since()) > r.cfg.MaxAge {
		r.settle(d, attempt{outcome: fail, err: "not delivered within the relay's max age (" + r.cfg.MaxAge.String() + "); last error: " + d.LastError})
		return
	}
	a := r.send(d, d.Body)
	if r.ctx.Err() != nil {
		r.reschedule(d) // cut by Close
		return
	}
	d.Attempts++
	r.settle(d, a)
}

// endedBody makes the body of a session.ended, with the verdict of a
// finished flow.
func (r *Relay) endedBody(d Delivery) ([]byte, error) {
	verdict := ""
	if d.End.Reason == ReasonFinished && r.cfg.Scorer != nil {
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeout)
		defer cancel()
		v, err := r.cfg.Scorer.Verdict(ctx, d.InterviewID)
		if err != nil {
			return nil, err
		}
		verdict = v
	}
	return endedJSON(d.InterviewID, *d.End, verdict, d.Created), nil
}

// settle records what an attempt at d came to.
func (r *Relay) settle(d Delivery, a attempt) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	switch a.outcome {
	case delivered:
		err = r.queue.Done(ctx, d)
		r.metrics.delivered(d)
	case retry:
		at := time.Now().Add(max(r.backoff(d.Attempts), a.retryAfter))
		d.LastError = a.err
		if at.Sub(d.since()) > r.cfg.MaxAge {
			r.settle(d, attempt{outcome: fail, err: a.err + "; not delivered within the relay's max age (" + r.cfg.MaxAge.String() + ")"})
			return
		}
		err = r.queue.Retry(ctx, d, at)
		r.metrics.count([]Delivery{d}, "retried")
	case fail:
		d.LastError, d.FailedAt = a.err, time.Now()
		err = r.queue.Fail(ctx, d)
		r.metrics.count([]Delivery{d}, "failed")
		r.cfg.Logger.Warn("relay: delivery failed; kept for redelivery (GET /v1/relay/failed)", "id", d.ID, "kind", d.Kind,
			"interview", d.InterviewID, "target", Redacted(d.Target), "attempts", d.Attempts, "err", a.err)
	}
	if err != nil {
		r.cfg.Logger.Warn("relay: the queue could not record a delivery's outcome; it is tried again later", "id", d.ID, "err", err)
	}
	r.poke() // the lane's next delivery may be due
}

// reschedule puts d, cut by Close, back at the head of its lane without
// counting an attempt: due now, for whoever takes the lane.
func (r *Relay) reschedule(d Delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.queue.Retry(ctx, d, time.Now()) // out of reach: the claim lapses
}

// Redacted is a target URL fit for logs and answers: its query, which may
// hold a secret, is left out.
func Redacted(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "(unparsable)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	return u.String()
}
