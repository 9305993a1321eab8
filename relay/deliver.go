package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
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

// send makes one attempt to deliver body as d, signed now.
func (r *Relay) send(ctx context.Context, d Delivery, body []byte) attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target, bytes.NewReader(body))
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
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return attempt{outcome: retry, err: "stopped: pushgate is shutting down"}
		}
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
		return attempt{outcome: retry, err: "HTTP " + strconv.Itoa(code), retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case code >= 300 && code < 400:
		return attempt{outcome: fail, err: fmt.Sprintf("HTTP %d: redirects are not followed (to %q)", code, resp.Header.Get("Location"))}
	}
	return attempt{outcome: fail, err: "HTTP " + strconv.Itoa(code)}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; zero
// when absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// backoff is the wait before attempt n+1 after n failed ones: BackoffMin
// doubled per attempt, at most BackoffMax, the upper half random, so that
// the retries of many lanes spread.
func (r *Relay) backoff(n int) time.Duration {
	d := r.cfg.BackoffMin
	for i := 1; i < n && d < r.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.BackoffMax)
	return d/2 + rand.N(d/2+1)
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
	a := r.send(r.ctx, d, d.Body)
	if r.ctx.Err() != nil {
		// Cut by Close: tried again at once by whoever takes the lane.
		r.reschedule(d, time.Now())
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
			"interview", d.InterviewID, "target", redacted(d.Target), "attempts", d.Attempts, "err", a.err)
	}
	if err != nil {
		r.cfg.Logger.Warn("relay: the queue could not record a delivery's outcome; it is tried again later", "id", d.ID, "err", err)
	}
	r.poke() // the lane's next delivery may be due
}

// reschedule puts d back at the head of its lane, due at at, without
// counting an attempt.
func (r *Relay) reschedule(d Delivery, at time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.queue.Retry(ctx, d, at) // out of reach: the claim lapses
}

// Redacted is a target URL fit for logs and answers: its query, which may
// hold a secret, is left out.
func Redacted(target string) string { return redacted(target) }

func redacted(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "(unparsable)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	return u.String()
}
