package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pushgate/pushgate/upstream/simulator"
)

// TestControlToken: the tool's calls to the simulator's control API (status
// changes, stats) carry -sim-control-token, which a simulator listening
// beyond loopback asks for; without it they come back 403.
func TestControlToken(t *testing.T) {
	const token = "control-token-0123456789"
	cfg, err := parseFlags([]string{"-sim-control-token", token}, io.Discard)
	if err != nil || cfg.simToken != token {
		t.Fatalf("-sim-control-token: %q, %v", cfg.simToken, err)
	}
	srv := httptest.NewUnstartedServer(nil)
	sim := simulator.New(simulator.Config{Addr: &net.TCPAddr{IP: net.IPv4zero, Port: 8090}, ControlToken: token})
	srv.Config.Handler = sim
	srv.Start()
	defer srv.Close()
	ctx := context.Background()

	with := newAPI(nil, srv.URL, "k", cfg.simToken)
	defer with.Close()
	s, err := with.simSession(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := with.setStatus(ctx, s.ID, simulator.StatusIDValidationFinished); err != nil {
		t.Fatalf("status change with the token: %v", err)
	}
	if info, _ := sim.Session(s.ID); info.OnboardingStatus != simulator.StatusIDValidationFinished {
		t.Fatalf("status %q after the change", info.OnboardingStatus)
	}
	if _, err := with.stats(ctx); err != nil {
		t.Fatalf("stats with the token: %v", err)
	}

	without := newAPI(nil, srv.URL, "k", "")
	defer without.Close()
	var refused *httpStatusError
	if err := without.setStatus(ctx, s.ID, simulator.StatusOnboardingFinished); !errors.As(err, &refused) || refused.Code != http.StatusForbidden {
		t.Errorf("status change without the token: %v, want HTTP 403", err)
	}
	if _, err := without.stats(ctx); !errors.As(err, &refused) || refused.Code != http.StatusForbidden {
		t.Errorf("stats without the token: %v, want HTTP 403", err)
	}
}
