package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// oauthClient gets the access tokens webhook calls carry, as the upstream
// does once a customer sets an authentication URL, client id and secret:
// OAuth 2.0 client credentials (RFC 6749 section 4.4), the token reused
// until it expires. The webhook sender and its retriers share it.
type oauthClient struct {
	url, id, secret string
	sim             *Simulator

	// mu protects access and expires, and is held while a token is
	// fetched, so concurrent calls wait for one fetch instead of making
	// their own.
	mu      sync.Mutex
	access  string
	expires time.Time
}

// token returns the access token in force, fetching a new one when there
// is none or it has expired.
func (o *oauthClient) token(ctx context.Context, hc *http.Client) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.access != "" && time.Now().Before(o.expires) {
		return o.access, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(o.id), url.QueryEscape(o.secret))
	o.sim.countWebhookToken()
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ans struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint answered HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.AccessToken == "" || !strings.EqualFold(ans.TokenType, "bearer") {
		return "", fmt.Errorf("token endpoint answered no bearer access token (%v)", err)
	}
	o.access, o.expires = ans.AccessToken, time.Now().Add(time.Duration(ans.ExpiresIn)*time.Second)
	return o.access, nil
}

// forget drops a token the webhook refused, so the next call fetches a new
// one; a newer token, fetched since, stays.
func (o *oauthClient) forget(token string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.access == token {
		o.access = ""
	}
}
