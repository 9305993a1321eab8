package upstream

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/pushgate/pushgate/upstream/simulator"
)

// TestLateReaderSharesTheLogIn plays, in order, the interleaving that made
// concurrent first reads log in twice: a reader finds no admin token and
// decides to log in, but before it asks for the log-in another reader's
// log-in runs and ends. The late reader must take that log-in's token
// instead of logging in again.
func TestLateReaderSharesTheLogIn(t *testing.T) {
	sim := simulator.New(simulator.Config{APIKey: "key", AdminEmail: "exec@example.com", AdminPassword: "pw"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, APIKey: "key"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s, err := c.Start(context.Background(), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err = New(Config{BaseURL: srv.URL, APIKey: "key", AdminEmail: "exec@example.com", AdminPassword: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	paused, release := make(chan struct{}), make(chan struct{})
	var callers atomic.Int32
	c.admin.beforeLogIn = func() {
		if callers.Add(1) == 1 { // the late reader waits in the window
			close(paused)
			<-release
		}
	}
	late := make(chan error, 1)
	go func() {
		_, err := c.Status(context.Background(), s.InterviewID, "")
		late <- err
	}()
	<-paused
	if st, err := c.Status(context.Background(), s.InterviewID, ""); err != nil || st != "UNKNOWN" {
		t.Fatalf("the first reader: %q, %v", st, err)
	}
	close(release)
	if err := <-late; err != nil {
		t.Fatalf("the late reader: %v", err)
	}
	if n := sim.Stats().LogIn; n != 1 {
		t.Fatalf("%d log-ins, want 1: the late reader must take the token of the log-in that ended meanwhile", n)
	}
}
