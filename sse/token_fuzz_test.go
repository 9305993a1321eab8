package sse

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The token fuzz target runs on a fixed clock, so the tokens it issues, and
// those in testdata/fuzz/FuzzTokenVerify, are the same on every run.
var (
	tokenFuzzSecret = []byte("pushgate-fuzz-secret-0123456789")
	tokenFuzzNow    = time.Unix(1_767_225_600, 0) // 2026-01-01T00:00:00Z
	tokenFuzzTTL    = time.Hour
	// tokenFuzzID is what the gateway accepts as an interview id (see
	// handler.go); ids with a '.' cannot round-trip through a token.
	tokenFuzzID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// tokensAt returns Tokens with the given secret whose clock stands at now.
func tokensAt(tb testing.TB, secret []byte, now time.Time) *Tokens {
	tb.Helper()
	tk, err := NewTokens(secret, tokenFuzzTTL)
	if err != nil {
		tb.Fatal(err)
	}
	tk.now = func() time.Time { return now }
	return tk
}

// FuzzTokenVerify checks that Verify never panics, that nothing but a token
// the same Tokens issued gets past the MAC check, and, for a valid interview
// id, that an issued token verifies for that interview only, until it
// expires, and not after any single-byte change.
func FuzzTokenVerify(f *testing.F) {
	tk := tokensAt(f, tokenFuzzSecret, tokenFuzzNow)
	good, _ := tk.Issue("64f1c0ffee0123456789abcd")
	long, _ := tk.Issue(strings.Repeat("Z", 64))
	dotted, _ := tk.Issue("a.b")
	empty, _ := tk.Issue("")
	other, _ := tokensAt(f, []byte("another-secret-0123456789abcdef"), tokenFuzzNow).Issue("64f1c0ffee0123456789abcd")
	for _, s := range []struct{ tok, id string }{
		{good, "64f1c0ffee0123456789abcd"},
		{good, "64f1c0ffee0123456789abcE"},
		{long, strings.Repeat("Z", 64)},
		{dotted, "a.b"},
		{empty, ""},
		{empty, "x"},
		{other, "64f1c0ffee0123456789abcd"},
		{good[:len(good)-1] + "A", "64f1c0ffee0123456789abcd"},
		{strings.Replace(good, "v1.", "v2.", 1), "64f1c0ffee0123456789abcd"},
		{"", "abc"},
		{".", ""},
		{"v1.abc.1767229200.", "abc"},
		{"v1.abc.+1767229200.AAAA", "abc"},
		{"v1.abc.99999999999999999999.AAAA", "abc"},
		{"v1..." + strings.Repeat(".", 600), "-"},
		{strings.Repeat("a", 513), "a"},
		{"v1.\xff\xfe.1767229200.\x00", "_"},
	} {
		f.Add(s.tok, s.id)
	}
	stale := tokensAt(f, tokenFuzzSecret, tokenFuzzNow.Add(tokenFuzzTTL))
	foreign := tokensAt(f, []byte("another-secret-0123456789abcdef"), tokenFuzzNow)
	f.Fuzz(func(t *testing.T, tok, interviewID string) {
		checkVerify(t, tk, tok, interviewID)
		if tokenFuzzID.MatchString(interviewID) {
			checkIssued(t, tk, stale, foreign, tok, interviewID)
		}
	})
}

// checkVerify verifies an arbitrary tok: anything that passes the MAC check
// must be exactly what tk issues for the id inside it, and tk issues no
// expired tokens.
func checkVerify(t *testing.T, tk *Tokens, tok, interviewID string) {
	err := tk.Verify(tok, interviewID)
	switch {
	case err == nil:
		if want, _ := tk.Issue(interviewID); tok != want {
			t.Fatalf("Verify(%q, %q) = nil, but that interview's token is %q", tok, interviewID, want)
		}
	case errors.Is(err, ErrTokenWrongInterview):
		parts := strings.Split(tok, ".")
		if len(parts) != 4 || parts[1] == interviewID {
			t.Fatalf("Verify(%q, %q) = %v for a token of that interview", tok, interviewID, err)
		}
		if want, _ := tk.Issue(parts[1]); tok != want {
			t.Fatalf("Verify(%q, %q) = %v: MAC accepted, but interview %q's token is %q", tok, interviewID, err, parts[1], want)
		}
	case errors.Is(err, ErrTokenMissing):
		if tok != "" {
			t.Fatalf("Verify(%q, %q) = %v for a non-empty token", tok, interviewID, err)
		}
	case errors.Is(err, ErrTokenInvalid):
	default:
		// ErrTokenExpired included: only a forged MAC gets an expired
		// token past the MAC check of tk, which issues none.
		t.Fatalf("Verify(%q, %q) = %v", tok, interviewID, err)
	}
}

// checkIssued issues a token for a valid interview id and checks where it
// verifies. noise, the fuzzer's other input, picks the other interview and
// the single-byte change.
func checkIssued(t *testing.T, tk, stale, foreign *Tokens, noise, id string) {
	tok, exp := tk.Issue(id)
	if !exp.Equal(tokenFuzzNow.Add(tokenFuzzTTL)) {
		t.Fatalf("Issue(%q) expires at %v, want %v", id, exp, tokenFuzzNow.Add(tokenFuzzTTL))
	}
	if err := tk.Verify(tok, id); err != nil {
		t.Fatalf("Verify(Issue(%q)) = %v", id, err)
	}
	otherID := noise
	if otherID == id {
		otherID = id + "x"
	}
	if err := tk.Verify(tok, otherID); !errors.Is(err, ErrTokenWrongInterview) {
		t.Fatalf("Verify(Issue(%q), %q) = %v, want %v", id, otherID, err, ErrTokenWrongInterview)
	}
	if err := stale.Verify(tok, id); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify(Issue(%q)) at its expiry = %v, want %v", id, err, ErrTokenExpired)
	}
	if err := foreign.Verify(tok, id); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("Verify(Issue(%q)) with another secret = %v, want %v", id, err, ErrTokenInvalid)
	}
	// Any byte changed, the id part's included, changes the MAC input or
	// the MAC, so the token is invalid, whichever interview is asked for.
	pos, b := len(noise)%len(tok), byte('.')
	for i := 0; i < len(noise); i++ {
		pos = (pos*31 + int(noise[i])) % len(tok)
		b = noise[i]
	}
	if b == tok[pos] {
		b ^= 0x01
	}
	changed := []byte(tok)
	changed[pos] = b
	for _, asked := range []string{id, otherID} {
		if err := tk.Verify(string(changed), asked); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("Verify(%q, %q), byte %d of Issue(%q) = %q changed, = %v, want %v",
				changed, asked, pos, id, tok, err, ErrTokenInvalid)
		}
	}
}

// TestTokenEveryByteChangeIsInvalid tries all 255 other values of every
// byte of issued tokens, which the fuzz target samples.
func TestTokenEveryByteChangeIsInvalid(t *testing.T) {
	tk := tokensAt(t, tokenFuzzSecret, tokenFuzzNow)
	for _, id := range []string{"a", "64f1c0ffee0123456789abcd", strings.Repeat("_-9", 21)} {
		tok, _ := tk.Issue(id)
		changed := []byte(tok)
		for pos := range changed {
			for d := 1; d < 256; d++ {
				changed[pos] = tok[pos] ^ byte(d)
				if err := tk.Verify(string(changed), id); !errors.Is(err, ErrTokenInvalid) {
					t.Fatalf("Issue(%q) = %q with byte %d set to %q verifies as %v, want %v",
						id, tok, pos, changed[pos], err, ErrTokenInvalid)
				}
			}
			changed[pos] = tok[pos]
		}
	}
}
