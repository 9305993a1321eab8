package sse

import (
	"testing"
	"time"
)

func TestTokenRotation(t *testing.T) {
	old, err := NewTokens([]byte("the old secret, 32 bytes long..."), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oldTok, _ := old.Issue("iv1")
	now := time.Now()
	cur, err := NewTokens([]byte("the new secret, 32 bytes long..."), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.Verify(oldTok, "iv1"); err != ErrTokenInvalid {
		t.Fatalf("old token without a grace period: %v, want invalid", err)
	}
	if err := cur.AcceptPrevious([]byte("the old secret, 32 bytes long..."), now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := cur.Verify(oldTok, "iv1"); err != nil {
		t.Fatalf("old token during the grace period: %v", err)
	}
	if err := cur.Verify(oldTok, "iv2"); err != ErrTokenWrongInterview {
		t.Fatalf("old token for another interview: %v", err)
	}
	newTok, _ := cur.Issue("iv1")
	if err := old.Verify(newTok, "iv1"); err != ErrTokenInvalid {
		t.Fatal("the old secret verifies new tokens")
	}
	cur.now = func() time.Time { return now.Add(31 * time.Minute) }
	if err := cur.Verify(oldTok, "iv1"); err != ErrTokenInvalid {
		t.Fatalf("old token after the grace period: %v, want invalid", err)
	}
	if err := cur.Verify(newTok, "iv1"); err != nil {
		t.Fatalf("new token: %v", err)
	}
	cur.now = func() time.Time { return now.Add(2 * time.Hour) }
	for range 2 { // reuse after expiry stays refused
		if err := cur.Verify(newTok, "iv1"); err != ErrTokenExpired {
			t.Fatalf("token reused after expiry: %v, want expired", err)
		}
	}
	if err := cur.AcceptPrevious([]byte("short"), now); err == nil {
		t.Fatal("a short previous secret was accepted")
	}
}

// TestTokenLifetimeBounded: a token signed with a gateway's secret but
// claiming to live longer than the gateway issues (a leaked secret, or a
// forged far-future expiry) is refused, current or previous secret alike.
func TestTokenLifetimeBounded(t *testing.T) {
	secret := []byte("the secret, at least 32 bytes...")
	now := time.Now()
	long, err := NewTokens(secret, 100*365*24*time.Hour) // a gateway issuing for a century
	if err != nil {
		t.Fatal(err)
	}
	farTok, _ := long.Issue("iv1")
	cur, _ := NewTokens(secret, time.Hour)
	if err := cur.Verify(farTok, "iv1"); err != ErrTokenInvalid {
		t.Fatalf("a token expiring in a century: %v, want invalid", err)
	}
	rotated, _ := NewTokens([]byte("the next secret, 32 bytes long.."), time.Hour)
	if err := rotated.AcceptPrevious(secret, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := rotated.Verify(farTok, "iv1"); err != ErrTokenInvalid {
		t.Fatalf("a far-future token of the previous secret: %v, want invalid", err)
	}
	// Within the lifetime and the clock skew of another node: valid.
	skewed, _ := NewTokens(secret, time.Hour)
	skewed.now = func() time.Time { return now.Add(clockSkew / 2) }
	tok, _ := skewed.Issue("iv1")
	if err := cur.Verify(tok, "iv1"); err != nil {
		t.Fatalf("a token from a node %v ahead: %v", clockSkew/2, err)
	}
	// Webhook access tokens are bounded by their own lifetime.
	wh, _ := long.IssueWebhook(48 * time.Hour)
	if err := cur.VerifyWebhook(wh, time.Hour); err != ErrTokenInvalid {
		t.Fatalf("a webhook token for 48h where 1h is issued: %v, want invalid", err)
	}
	if wh, _ := cur.IssueWebhook(time.Hour); cur.VerifyWebhook(wh, time.Hour) != nil {
		t.Fatal("a webhook token as issued does not verify")
	}
}
