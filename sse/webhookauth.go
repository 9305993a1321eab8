package sse

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// The upstream's webhook calls are authenticated in one of three ways,
// whichever the customer's upstream setup allows:
//
//   - OAuth 2.0 client credentials (the upstream's dashboard: an
//     authentication URL, a client id and a client secret): the upstream
//     first gets an access token at POST /webhooks/token, then sends
//     "Authorization: Bearer <access token>";
//   - no header at all (the upstream without OAuth): the secret sits in
//     the callback URL's path, POST /webhooks/onboarding-status/{secret};
//   - a static custom header (the upstream's dashboard sets static
//     headers on webhook calls): "<WebhookHeaderName>: <WebhookHeaderValue>";
//   - a static bearer: "Authorization: Bearer <WebhookSecret>".
//
// The optional allowlist of source addresses applies to all of them.

// webhookAuthorized checks a webhook call's credentials: the secret in the
// path on the route that carries one, else the custom header, else a
// bearer that is the static secret or an access token this gateway (or
// any node with its secret) issued.
func (h *Handler) webhookAuthorized(r *http.Request) error {
	if secret, ok := mux.Vars(r)["secret"]; ok {
		if h.cfg.WebhookSecret == "" || !equalSecret(secret, h.cfg.WebhookSecret) {
			return errorf(http.StatusUnauthorized, "webhook call without the right secret in its path")
		}
		return nil
	}
	if name := h.cfg.WebhookHeaderName; name != "" {
		if got, ok := r.Header[http.CanonicalHeaderKey(name)]; ok && len(got) == 1 && equalSecret(got[0], h.cfg.WebhookHeaderValue) {
			return nil
		}
		if h.cfg.WebhookSecret == "" && h.cfg.WebhookClientID == "" {
			return errorf(http.StatusUnauthorized, "webhook call without the right "+name+" header")
		}
	}
	tok, ok := bearerToken(r)
	switch {
	case !ok:
		return errorf(http.StatusUnauthorized, "webhook call without a bearer secret or access token")
	case h.cfg.WebhookSecret != "" && equalSecret(tok, h.cfg.WebhookSecret):
		return nil
	case h.cfg.WebhookClientID != "" && h.cfg.Tokens.VerifyWebhook(tok, h.cfg.WebhookTokenTTL) == nil:
		return nil
	}
	return errorf(http.StatusUnauthorized, "webhook call with a wrong bearer secret, or an invalid or expired access token")
}

// webhookThrottled refuses, with 429, a webhook call or token request
// from an address that sent wrong credentials too often (see
// Config.WebhookFailuresPerMinute): guessing a secret gets a few tries a
// minute. Only failures count, so the upstream's calls are never held
// back, unless they share an address with the guesser (a load balancer
// not in TrustedProxies). A throttled call is refused whatever it
// carries: were right credentials let through, the answer would still
// tell a guess right from wrong at full speed. The check takes no token,
// so that any number of the upstream's calls may be in flight at once;
// guesses sent together may therefore pass it before the failures among
// them are spent: those in flight at once, beyond the allowance.
// key is r's clientKey.
func (h *Handler) webhookThrottled(r *http.Request, key string) error {
	wait := h.webhookFailures.blocked(key)
	if wait <= 0 {
		return nil
	}
	h.metrics.rateLimit(logPath(r))
	return &Error{Status: http.StatusTooManyRequests, RetryAfter: wait, Code: "webhook_rate_limited",
		Message: "too many webhook calls with wrong credentials from this address; try again in " + strconv.FormatInt(retrySeconds(wait), 10) + "s"}
}

// equalSecret compares in constant time, over digests, so not even the
// length of the secret leaks.
func equalSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// oauthError answers a token request the way RFC 6749 section 5.2 says:
// {"error": code, "error_description": ...}, never cached, and logs it as
// any refusal.
func (h *Handler) oauthError(w http.ResponseWriter, r *http.Request, status int, code, description string) {
	e := &Error{Status: status, Code: code, Message: description}
	logRequestError(h.log, r, e, e)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="pushgate webhooks"`)
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// webhookToken is the OAuth 2.0 token endpoint of the client credentials
// grant (RFC 6749 section 4.4) the upstream calls before its webhooks:
// Basic client authentication, grant_type=client_credentials in a form
// body, and a bearer access token in the answer.
func (h *Handler) webhookToken(w http.ResponseWriter, r *http.Request) {
	result := "refused"
	defer func() { h.metrics.webhookToken(result) }()
	if !h.webhookSourceAllowed(r) {
		writeError(w, r, h.log, errorf(http.StatusForbidden, "webhook calls are not taken from this address"))
		return
	}
	key := h.clientKey(r)
	if err := h.webhookThrottled(r, key); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if !h.clientAuthenticated(r) {
		h.webhookFailures.spend(key)
		h.oauthError(w, r, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret (send them with HTTP Basic authentication)")
		return
	}
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		h.oauthError(w, r, http.StatusBadRequest, "invalid_request", "the body must be a form (application/x-www-form-urlencoded)")
		return
	}
	// RFC 6749 section 3.2: no parameter more than once.
	if k, ok := repeatedParam(r.PostForm); ok {
		h.oauthError(w, r, http.StatusBadRequest, "invalid_request", k+" given more than once")
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		h.oauthError(w, r, http.StatusBadRequest, "invalid_request", "grant_type is missing")
		return
	default:
		h.oauthError(w, r, http.StatusBadRequest, "unsupported_grant_type", "only grant_type=client_credentials is supported")
		return
	}
	tok, exp := h.cfg.Tokens.IssueWebhook(h.cfg.WebhookTokenTTL)
	result = "issued"
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int64(time.Until(exp).Seconds()),
	})
}

// clientAuthenticated checks the Basic credentials of a token request.
// RFC 6749 section 2.3.1 has clients form-encode both before Basic; some
// do not, so the credentials match either way.
func (h *Handler) clientAuthenticated(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return false
	}
	match := func(got, want string) bool {
		dec, err := url.QueryUnescape(got)
		return equalSecret(got, want) || (err == nil && equalSecret(dec, want))
	}
	return match(id, h.cfg.WebhookClientID) && match(secret, h.cfg.WebhookClientSecret)
}
