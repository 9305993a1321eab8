package sse

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Token errors. Missing, invalid and expired tokens answer 401; a valid
// token for another interview answers 403.
var (
	ErrTokenMissing        = errors.New("sse: token missing")
	ErrTokenInvalid        = errors.New("sse: token invalid")
	ErrTokenExpired        = errors.New("sse: token expired")
	ErrTokenWrongInterview = errors.New("sse: token is for another interview")
)

// minSecret is the shortest HMAC secret Tokens accepts.
const minSecret = 16

// CheckSecret says what is wrong with a secret of NewTokens or
// AcceptPrevious: it must be at least 16 bytes. The error reads on from
// the secret's name: "token secret " + err.Error().
func CheckSecret(secret []byte) error {
	if len(secret) < minSecret {
		return fmt.Errorf("must be at least %d bytes", minSecret)
	}
	return nil
}

// clockSkew is how far beyond now plus its lifetime a token's expiry may
// lie and still verify: the clocks of a cluster's nodes differ a little.
// A token that claims to live longer was not issued by this gateway as
// configured, whatever its signature says.
const clockSkew = time.Minute

// Tokens issues and verifies the browser's access tokens. A token is bound
// to one interview and expires:
//
//	v1.<interviewId>.<expiry unix seconds>.<base64url HMAC-SHA256 of the part before>
//
// It carries no upstream credential; verification needs only the secret, so
// any node with the same secret verifies it.
type Tokens struct {
	secret   []byte
	previous []byte    // an older secret still accepted until previousUntil; nil when none
	until    time.Time // end of the previous secret's grace period
	ttl      time.Duration
	now      func() time.Time // time.Now outside tests
}

// NewTokens returns Tokens signing with secret (at least 16 bytes) and
// issuing tokens valid for ttl (zero means 1h).
func NewTokens(secret []byte, ttl time.Duration) (*Tokens, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, fmt.Errorf("sse: token secret %w", err)
	}
	if ttl == 0 {
		ttl = time.Hour
	}
	if ttl < 0 {
		return nil, errors.New("sse: token TTL must not be negative")
	}
	return &Tokens{secret: append([]byte(nil), secret...), ttl: ttl, now: time.Now}, nil
}

// AcceptPrevious makes Verify also accept tokens signed with an older
// secret until the given time, so the secret can be rotated without
// logging anyone out: deploy the new secret with the old one as previous,
// for one token TTL. Call it before the Tokens are used.
func (t *Tokens) AcceptPrevious(secret []byte, until time.Time) error {
	if err := CheckSecret(secret); err != nil {
		return fmt.Errorf("sse: previous token secret %w", err)
	}
	t.previous, t.until = append([]byte(nil), secret...), until
	return nil
}

// TTL is how long issued tokens are valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a token for the interview and its expiry.
func (t *Tokens) Issue(interviewID string) (string, time.Time) {
	exp := t.now().Add(t.ttl).Truncate(time.Second)
	body := "v1." + interviewID + "." + strconv.FormatInt(exp.Unix(), 10)
	return body + "." + t.sign(body), exp
}

// Verify checks that tok is authentic, unexpired and for interviewID, and
// that its expiry lies no further than TTL from now (see clockSkew).
func (t *Tokens) Verify(tok, interviewID string) error {
	if tok == "" {
		return ErrTokenMissing
	}
	cut := strings.LastIndexByte(tok, '.')
	if cut < 0 || len(tok) > 512 {
		return ErrTokenInvalid
	}
	body, mac := tok[:cut], tok[cut+1:]
	if !t.authentic(body, mac) {
		return ErrTokenInvalid
	}
	parts := strings.Split(body, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return ErrTokenInvalid
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return ErrTokenInvalid
	}
	if err := t.live(exp, t.ttl); err != nil {
		return err
	}
	if parts[1] != interviewID {
		return ErrTokenWrongInterview
	}
	return nil
}

// authentic compares mac in constant time with the current secret's, and
// during the grace period with the previous secret's.
func (t *Tokens) authentic(body, mac string) bool {
	if hmac.Equal([]byte(mac), []byte(sign(t.secret, body))) {
		return true
	}
	return t.previous != nil && t.now().Before(t.until) && hmac.Equal([]byte(mac), []byte(sign(t.previous, body)))
}

func (t *Tokens) sign(body string) string { return sign(t.secret, body) }

// IssueWebhook returns an OAuth access token for the upstream's webhook
// calls, valid for ttl, and its expiry. It is signed like the browsers'
// tokens but for another audience, so neither kind passes for the other:
//
//	wh1.<expiry unix seconds>.<base64url HMAC-SHA256 of the part before>
func (t *Tokens) IssueWebhook(ttl time.Duration) (string, time.Time) {
	exp := t.now().Add(ttl).Truncate(time.Second)
	body := "wh1." + strconv.FormatInt(exp.Unix(), 10)
	return body + "." + t.sign(body), exp
}

// VerifyWebhook checks that tok is an authentic, unexpired webhook access
// token, issued for at most ttl.
func (t *Tokens) VerifyWebhook(tok string, ttl time.Duration) error {
	cut := strings.LastIndexByte(tok, '.')
	if cut < 0 || len(tok) > 128 {
		return ErrTokenInvalid
	}
	body, mac := tok[:cut], tok[cut+1:]
	exp, ok := strings.CutPrefix(body, "wh1.")
	if !ok || !t.authentic(body, mac) {
		return ErrTokenInvalid
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return ErrTokenInvalid
	}
	return t.live(secs, ttl)
}

// live checks a token's expiry (unix seconds): in the future, and no
// further than a token issued now for ttl would expire, give or take
// clockSkew.
func (t *Tokens) live(exp int64, ttl time.Duration) error {
	now := t.now()
	switch {
	case !now.Before(time.Unix(exp, 0)):
		return ErrTokenExpired
	case time.Unix(exp, 0).After(now.Add(ttl + clockSkew)):
		return ErrTokenInvalid
	}
	return nil
}

func sign(secret []byte, body string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
