package relay

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Standard Webhooks headers (standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// MinKeyLen is the shortest signing key taken: 24 bytes (192 bits), as
// the Standard Webhooks spec asks.
const MinKeyLen = 24

// secretPrefix starts a signing secret: whsec_ and the key in base64.
const secretPrefix = "whsec_"

// signer signs with every secret configured: during a rotation both the
// old and the new, so a receiver that knows either one verifies.
type signer struct {
	keys []*standardwebhooks.Webhook
}

// newSigner checks the secrets (whsec_ and the base64 of a key of at least
// MinKeyLen bytes) and returns their signer.
func newSigner(secrets []string) (*signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("relay: a signing secret is required (whsec_ and the base64 of at least 24 random bytes)")
	}
	s := &signer{}
	for i, secret := range secrets {
		if err := CheckSecret(secret); err != nil {
			return nil, fmt.Errorf("relay: secret %d: %w", i+1, err)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return nil, fmt.Errorf("relay: secret %d: %w", i+1, err)
		}
		s.keys = append(s.keys, wh)
	}
	return s, nil
}

// CheckSecret reports what is wrong with a signing secret: it must be
// whsec_ and the standard base64 of a key of at least MinKeyLen bytes.
func CheckSecret(secret string) error {
	b64, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return errors.New("a secret starts with whsec_, then the base64 of the key (e.g. whsec_$(openssl rand -base64 32))")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return errors.New("after whsec_ a secret is the standard base64 of the key")
	}
	if len(key) < MinKeyLen {
		return fmt.Errorf("the key is %d bytes, want at least %d (e.g. whsec_$(openssl rand -base64 32))", len(key), MinKeyLen)
	}
	return nil
}

// headers are the Standard Webhooks headers of one attempt to send body
// as the event id, at now: one v1 signature per secret, space-separated.
func (s *signer) headers(id string, now time.Time, body []byte) map[string]string {
	sigs := make([]string, len(s.keys))
	for i, k := range s.keys {
		sig, err := k.Sign(id, now, body)
		if err != nil {
			panic("relay: signing: " + err.Error()) // HMAC-SHA256 never fails
		}
		sigs[i] = sig
	}
	return map[string]string{
		HeaderID:        id,
		HeaderTimestamp: strconv.FormatInt(now.Unix(), 10),
		HeaderSignature: strings.Join(sigs, " "),
	}
}
