package upstream

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// adminAuth is the admin (executive) token of admin mode: fixed
// (Config.AdminToken), or obtained with Config.AdminEmail and
// AdminPassword from POST /executive/log-in and renewed before it expires.
// The zero value is session-token mode.
type adminAuth struct {
	fixed           string
	email, password string
	ttl             time.Duration // how long a token from a log-in lives
	// logins runs one log-in at a time per stale token: the callers that
	// found the same token due share one.
	logins singleflight.Group
	// beforeLogIn, nil but in tests, runs when a caller has found the token
	// due and before it asks for a log-in: the window in which another
	// caller's log-in may start and end.
	beforeLogIn func()

	mu      sync.Mutex // protects token, renewAt
	token   string
	renewAt time.Time // a log-in is due after this
}

// on reports whether statuses and scores are read by interview id with an
// admin token.
func (a *adminAuth) on() bool { return a.fixed != "" || a.email != "" }

// renews reports whether the Client gets its admin tokens by itself.
func (a *adminAuth) renews() bool { return a.fixed == "" && a.email != "" }

// adminToken returns the admin token to send: the fixed one, or the one
// the last log-in gave while it is not due for renewal; else it logs in.
func (c *Client) adminToken(ctx context.Context) (string, error) {
	a := &c.admin
	if a.fixed != "" {
		return a.fixed, nil
	}
	token, fresh := a.current("")
	if fresh {
		return token, nil
	}
	return c.renewAdminToken(ctx, token)
}

// current returns the token of the last log-in, and whether it serves a
// caller that found stale due: it is another token, not yet due for
// renewal.
func (a *adminAuth) current(stale string) (token string, fresh bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token, a.token != stale && time.Now().Before(a.renewAt)
}

// renewAdminToken logs in again unless a newer token than stale is already
// there: many reads that meet one expired token cause one log-in, shared.
// The check runs inside the flight, so a log-in that ended between a
// caller's look at the token and its flight serves that caller too.
func (c *Client) renewAdminToken(ctx context.Context, stale string) (string, error) {
	a := &c.admin
	if a.beforeLogIn != nil {
		a.beforeLogIn()
	}
	ch := a.logins.DoChan(stale, func() (any, error) {
		if token, fresh := a.current(stale); fresh {
			return token, nil
		}
		// The log-in serves every caller waiting for it: it runs under
		// its own timeout, not under the first caller's context.
		return c.logIn(context.WithoutCancel(ctx))
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", &Error{Op: "log-in", Kind: ErrUnavailable, Err: ctx.Err()}
	}
}

// logIn gets a new admin token (POST /executive/log-in) and keeps it until
// three quarters of its lifetime have passed.
func (c *Client) logIn(ctx context.Context) (_ string, err error) {
	defer c.metrics.observe("log-in", time.Now(), &err)
	a := &c.admin
	body := struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{a.email, a.password}
	rq := request{op: "log-in", method: http.MethodPost, path: "/executive/log-in", body: body}
	code, raw, err := c.do(ctx, rq)
	if err != nil {
		return "", err
	}
	token, err := decodeLogIn(raw)
	if err != nil {
		return "", malformed(rq.op, code, err)
	}
	a.mu.Lock()
	a.token, a.renewAt = token, time.Now().Add(a.ttl*3/4)
	a.mu.Unlock()
	return token, nil
}
