package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

const (
	execEmail    = "exec@example.com"
	execPassword = "exec-password-SECRET-55e1"
)

// TestAdminLogInRenews: with admin credentials the Client logs in at the
// first admin read, shares one log-in among concurrent reads, logs in
// again before the token expires, and, when the upstream refuses a token
// anyway, logs in once more and retries the read. The sharing holds
// whatever the interleaving: TestLateReaderSharesTheLogIn plays, in
// order, the one that once made two log-ins.
func TestAdminLogInRenews(t *testing.T) {
	const ttl = 400 * time.Millisecond
	sim := simulator.New(simulator.Config{APIKey: testKey, AdminEmail: execEmail, AdminPassword: execPassword, AdminTokenTTL: ttl})
	rec := &recorder{next: sim}
	srv := newServer(t, rec)
	session := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey})
	s, err := session.Start(context.Background(), upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The client believes tokens live twice as long as they do, so a
	// token dies under it and the 401 path runs too.
	c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminEmail: execEmail, AdminPassword: execPassword, AdminTokenTTL: 2 * ttl})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if st, err := c.Status(context.Background(), s.InterviewID, ""); err != nil || st != "UNKNOWN" {
				t.Errorf("admin read: %q, %v", st, err)
			}
		})
	}
	wg.Wait()
	if n := sim.Stats().LogIn; n != 1 {
		t.Fatalf("20 concurrent first reads logged in %d times, want 1", n)
	}
	var logIn recorded
	rec.mu.Lock()
	for _, r := range rec.reqs {
		if r.path == "/executive/log-in" {
			logIn = r
		}
	}
	rec.mu.Unlock()
	wantHeaders(t, logIn, map[string]string{"x-api-key": testKey, "api-version": "1.0", "Content-Type": "application/json", "X-Incode-Hardware-Id": ""})
	if string(logIn.body) != `{"email":"`+execEmail+`","password":"`+execPassword+`"}` || logIn.method != http.MethodPost {
		t.Fatalf("log-in sent %s %s", logIn.method, logIn.body)
	}

	time.Sleep(ttl + 50*time.Millisecond) // the token died; the client still trusts it
	if st, err := c.Status(context.Background(), s.InterviewID, ""); err != nil || st != "UNKNOWN" {
		t.Fatalf("read with an expired token: %q, %v; want a renewal and a retry", st, err)
	}
	if n := sim.Stats().LogIn; n != 2 {
		t.Fatalf("%d log-ins after a refused token, want 2", n)
	}
	time.Sleep(2*ttl*3/4 + 50*time.Millisecond) // three quarters of its believed life: due for renewal
	if _, err := c.Score(context.Background(), s.InterviewID, ""); err != nil {
		t.Fatal(err)
	}
	if n := sim.Stats().LogIn; n != 3 {
		t.Fatalf("%d log-ins, want a renewal before expiry (3)", n)
	}
}

// TestAdminLogInRefused: wrong credentials fail the read as unauthorized,
// without retrying forever, and the password never shows in the error.
func TestAdminLogInRefused(t *testing.T) {
	sim := simulator.New(simulator.Config{APIKey: testKey, AdminEmail: execEmail, AdminPassword: "another"})
	srv := newServer(t, sim)
	c := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminEmail: execEmail, AdminPassword: execPassword})
	_, err := c.Status(context.Background(), "64f1c0ffee0123456789abcd", "")
	var ue *upstream.Error
	if !errors.As(err, &ue) || !ue.Unauthorized() || ue.Op != "log-in" {
		t.Fatalf("read with refused credentials: %v, want an unauthorized log-in", err)
	}
	if n := sim.Stats().LogIn; n != 1 {
		t.Fatalf("%d log-ins, want 1", n)
	}
	for _, secret := range []string{execPassword, testKey} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q shows a secret", err)
		}
	}
	if _, err := upstream.New(upstream.Config{BaseURL: srv.URL, AdminEmail: execEmail}); err == nil {
		t.Fatal("an admin email without a password was accepted")
	}
}

// TestSessionEnded: reads of a session the upstream deleted say
// "not_found", reads with an expired session token "expired", in session
// and admin mode; a 401 in admin mode is about the gateway's credentials.
func TestSessionEnded(t *testing.T) {
	sim, srv := newSim(t)
	session := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey})
	admin := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminToken: testAdmin})
	badAdmin := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminToken: "wrong"})
	ctx := context.Background()
	gone, _ := session.Start(ctx, upstream.StartOptions{})
	stale, _ := session.Start(ctx, upstream.StartOptions{})
	sim.Delete(gone.InterviewID)
	sim.Expire(stale.InterviewID)
	ended := func(err error) string {
		var ue *upstream.Error
		if !errors.As(err, &ue) {
			return "no upstream error: " + error.Error(err)
		}
		return ue.SessionEnded()
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"session read, deleted", second(session.Status(ctx, gone.InterviewID, gone.Token)), "not_found"},
		{"session score, deleted", second(session.Score(ctx, gone.InterviewID, gone.Token)), "not_found"},
		{"admin read, deleted", second(admin.Status(ctx, gone.InterviewID, "")), "not_found"},
		{"session read, token expired", second(session.Status(ctx, stale.InterviewID, stale.Token)), "expired"},
		{"admin read, bad admin token", second(badAdmin.Status(ctx, stale.InterviewID, "")), ""},
	} {
		if got := ended(tc.err); got != tc.want {
			t.Errorf("%s: SessionEnded %q (err %v), want %q", tc.name, got, tc.err, tc.want)
		}
	}
	if st, err := admin.Status(ctx, stale.InterviewID, ""); err != nil || st != "UNKNOWN" {
		t.Errorf("admin read of a session whose token expired: %q, %v", st, err)
	}
}

func second[T any](_ T, err error) error { return err }
