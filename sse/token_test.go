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
