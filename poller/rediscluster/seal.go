package rediscluster

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// This file seals the session tokens a Node stores in Redis, so that a
// dump of Redis reveals no credential: AES-256-GCM under a key derived
// from the gateway's secret, bound to the interview it belongs to.
//
// Stored value: sealedPrefix + base64url(nonce || ciphertext || tag), with
// a random 12-byte nonce per value and the interview id as additional data.

// Format of a sealed token. A new key derivation or layout gets a new
// version in both, and open keeps reading the old one while any may be
// stored.
const (
	sealedPrefix = "v1."
	tokenKeyInfo = "pushgate redis session token v1" // HKDF info of the sealing key
)

// minSecretLen is the shortest secret Config accepts, as for the gateway's
// -secret.
const minSecretLen = 16

// checkSecrets says what is wrong with the secrets of a Config, if
// anything.
func checkSecrets(secret, previous []byte) error {
	switch {
	case len(secret) == 0:
		return errors.New("rediscluster: Secret is required: the session tokens stored in Redis are sealed under it")
	case len(secret) < minSecretLen:
		return fmt.Errorf("rediscluster: Secret must be at least %d bytes", minSecretLen)
	case len(previous) > 0 && len(previous) < minSecretLen:
		return fmt.Errorf("rediscluster: PreviousSecret must be at least %d bytes", minSecretLen)
	}
	return nil
}

// Reasons a stored token does not open, besides a malformed encoding. They
// are logged, never returned: such a token counts as absent.
var (
	errNotSealed = errors.New("rediscluster: stored token is not sealed (written by an older version?)")
	errNoKey     = errors.New("rediscluster: stored token opens with neither the secret nor the previous one")
)

// sealer seals tokens under the current secret's key, and opens them with
// it or with the previous secret's. It is immutable, so safe for
// concurrent use.
type sealer struct {
	keys []cipher.AEAD // the current key first, then the previous one
}

// newSealer derives the keys of secret and, when not empty, previous.
func newSealer(secret, previous []byte) (*sealer, error) {
	s := &sealer{}
	for _, sec := range [][]byte{secret, previous} {
		if len(sec) == 0 {
			continue
		}
		aead, err := deriveAEAD(sec)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, aead)
	}
	return s, nil
}

// deriveAEAD makes the AES-256-GCM cipher, with a random nonce per seal,
// of the key HKDF-SHA256 derives from secret. No salt: the secret is
// already high-entropy key material, and the info string keeps this key
// apart from any other use of the secret (it also signs browser tokens).
func deriveAEAD(secret []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, tokenKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("rediscluster: deriving the token key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("rediscluster: token key: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("rediscluster: token cipher: %w", err)
	}
	return aead, nil
}

// seal returns the stored form of interviewID's token.
func (s *sealer) seal(interviewID, token string) string {
	box := s.keys[0].Seal(nil, nil, []byte(token), []byte(interviewID)) // nonce || ciphertext || tag
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(box)
}

// open returns the token stored as value for interviewID. A value that is
// not sealed (a plain token an older version wrote), not well formed, or
// sealed by another key or for another interview, does not open.
func (s *sealer) open(interviewID, value string) (string, error) {
	enc, ok := strings.CutPrefix(value, sealedPrefix)
	if !ok {
		return "", errNotSealed
	}
	box, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("rediscluster: stored token is not well formed: %w", err)
	}
	for _, k := range s.keys {
		if token, err := k.Open(nil, nil, box, []byte(interviewID)); err == nil {
			return string(token), nil
		}
	}
	return "", errNoKey
}

// maxUnopened bounds the interviews remembered as logged: past it they
// are forgotten all at once, so a flood of bad values costs little memory
// and at most one more warning each.
const maxUnopened = 10000

// unopened remembers the interviews whose stored token did not open, so
// that each is logged once. The zero value is ready to use.
type unopened struct {
	mu  sync.Mutex // protects ids
	ids map[string]struct{}
}

// first reports whether interviewID is not remembered yet, and remembers
// it.
func (u *unopened) first(interviewID string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.ids[interviewID]; ok {
		return false
	}
	if u.ids == nil || len(u.ids) >= maxUnopened {
		u.ids = make(map[string]struct{})
	}
	u.ids[interviewID] = struct{}{}
	return true
}

// openToken returns the token stored as value for interviewID, or "" (no
// token known, as for an unknown interview) when there is none or it does
// not open; the latter is logged once per interview, without the value.
func (n *Node) openToken(interviewID string, value any) string {
	s, ok := value.(string)
	if !ok { // field absent
		return ""
	}
	token, err := n.sealer.open(interviewID, s)
	if err != nil {
		if n.unopened.first(interviewID) {
			n.log.Warn("stored session token does not open; this node treats the interview's token as unknown",
				"interview", interviewID, "err", err)
		}
		return ""
	}
	return token
}
