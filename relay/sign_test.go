package relay

import (
	"strings"
	"testing"
	"time"
)

// TestSignatureVector signs the Standard Webhooks spec's own test vector
// (the reference libraries' TestWebhookSign) and a rotation's two secrets.
func TestSignatureVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	at := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	s, err := newSigner([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	h := s.headers(id, at, body)
	if h[HeaderSignature] != want || h[HeaderID] != id || h[HeaderTimestamp] != "1614265330" {
		t.Fatalf("headers %v, want signature %s", h, want)
	}
	rotating, err := newSigner([]string{"whsec_" + strings.Repeat("A", 32), secret})
	if err != nil {
		t.Fatal(err)
	}
	sigs := strings.Split(rotating.headers(id, at, body)[HeaderSignature], " ")
	if len(sigs) != 2 || sigs[1] != want || sigs[0] == want || !strings.HasPrefix(sigs[0], "v1,") {
		t.Fatalf("signatures %q, want the new secret's, then %s", sigs, want)
	}
}

func TestCheckSecret(t *testing.T) {
	for secret, ok := range map[string]bool{
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw":             true,  // 24 bytes
		"whsec_" + strings.Repeat("QUFB", 11):                true,  // 33 bytes
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La":                 false, // not base64 of whole bytes
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZI":                     false, // 22 bytes
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw":                   false, // no prefix
		"whsec_":                                             false,
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw!":            false,
		"whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYqrT": false, // an asymmetric key
	} {
		if err := CheckSecret(secret); (err == nil) != ok {
			t.Errorf("CheckSecret(%q) = %v, want ok %v", secret, err, ok)
		}
	}
}
