package upstream

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// probePath is what Probe asks: the session status endpoint, without a
// session token.
const probePath = "/0/omni/get/onboarding/status"

// Probe asks the upstream one question that needs no session and costs it
// next to nothing, to learn whether it answers: GET
// /0/omni/get/onboarding/status with the API key, as every call carries
// it, and no session token. The upstream refuses it with 401 (a missing
// session token) before it looks anything up, and bills nothing; the
// refusal is the answer Probe wants. Probe returns nil for any 4xx answer
// (a refusal is what the API owes a call without a session token, a 403
// for an API key it does not take and a 429 included: the upstream
// answers, it asks for less), the error of a 5xx, a network
// error or no answer within the deadline (ErrUnavailable), and
// ErrMalformed for a 2xx or 3xx, which the API never gives this call (a
// proxy or a wrong host answered). Its outcome counts for Healthy like any
// call's.
//
// Why this call: /omni/start opens (and bills) a session; the admin
// status endpoint needs an admin token, which session-token mode does not
// have and which expires; a status read with a real session token needs a
// session. The tokenless status read is the one call every deployment can
// make, in either mode.
func (c *Client) Probe(ctx context.Context) (err error) {
	defer c.metrics.observe("probe", time.Now(), &err)
	code, _, err := c.do(ctx, request{op: "probe", method: http.MethodGet, path: probePath})
	var e *Error
	switch {
	case err == nil:
		return malformed("probe", code, errors.New("a call without a session token was answered"))
	case errors.As(err, &e) && e.StatusCode >= 400 && e.StatusCode < 500:
		return nil
	}
	return err
}
