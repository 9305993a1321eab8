package rediscluster

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/poller/flow"
	"github.com/pushgate/pushgate/poller/rediscluster/redistest"
)

const sessionToken = "upstream-session-token-that-reads-identity-data"

var (
	oldSecret = []byte("the-secret-before-the-rotation!!")
	newSecret = []byte("the-secret-after-the-rotation!!!")
)

func TestNewRefusesAClusterWithoutASecret(t *testing.T) {
	tests := []struct {
		name             string
		secret, previous []byte
		want             string
	}{
		{"no secret", nil, nil, "Secret is required"},
		{"short secret", []byte("short"), nil, "Secret must be at least 16 bytes"},
		{"short previous secret", testSecret, []byte("short"), "PreviousSecret must be at least 16 bytes"},
		{"previous secret only", nil, testSecret, "Secret is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(Config{URL: "redis://127.0.0.1:1", Secret: tc.secret, PreviousSecret: tc.previous})
			if err == nil {
				n.Close()
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestSharedTokenIsSealedAtRest: Redis holds no trace of a shared token,
// and another node with the same secret reads it back.
func TestSharedTokenIsSealedAtRest(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv), newNode(t, srv)
	ctx := context.Background()
	if err := a.Share(ctx, "iv", sessionToken); err != nil {
		t.Fatal(err)
	}
	stored := rawToken(t, srv, "iv")
	if stored == sessionToken || strings.Contains(stored, sessionToken) || !strings.HasPrefix(stored, sealedPrefix) {
		t.Fatalf("Redis holds the token as %q; want it sealed, starting %q", stored, sealedPrefix)
	}
	if err := a.Share(ctx, "iv", sessionToken); err != nil {
		t.Fatal(err)
	}
	if again := rawToken(t, srv, "iv"); again == stored {
		t.Fatal("the same token was sealed twice into the same value; want a fresh nonce each time")
	}
	if sh, err := b.Load(ctx, "iv"); err != nil || sh.Token != sessionToken {
		t.Fatalf("Load on another node = %q, %v; want the shared token", sh.Token, err)
	}
}

// TestStoredTokenOpensOnlyWithItsKeyAndInterview puts values into an
// interview's token field as Redis could hold them, and loads them on
// nodes before, during and after a rotation of the secret.
func TestStoredTokenOpensOnlyWithItsKeyAndInterview(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	share := func(n *Node, interviewID string) string {
		if err := n.Share(ctx, interviewID, sessionToken); err != nil {
			t.Fatal(err)
		}
		return rawToken(t, srv, interviewID)
	}
	before := newNodeWith(t, srv, Config{Secret: oldSecret, Logger: quiet})
	during := newNodeWith(t, srv, Config{Secret: newSecret, PreviousSecret: oldSecret, Logger: quiet})
	after := newNodeWith(t, srv, Config{Secret: newSecret, Logger: quiet})
	sealedOld, sealedNew := share(before, "iv"), share(during, "iv")
	sealedElsewhere := share(before, "another-iv")
	tests := []struct {
		name   string
		stored string // the token field of "iv"
		reader *Node
		want   string
	}{
		{"same secret", sealedOld, before, sessionToken},
		{"another secret", sealedOld, after, ""},
		{"rotated: sealed under the previous secret", sealedOld, during, sessionToken},
		{"rotated: sealed under the new secret", sealedNew, during, sessionToken},
		{"new secret only, after the rotation", sealedNew, after, sessionToken},
		{"not rotated yet: sealed under the new secret", sealedNew, before, ""},
		{"copied from another interview", sealedElsewhere, before, ""},
		{"copied from another interview, rotated", sealedElsewhere, during, ""},
		{"plain text written by an older version", sessionToken, before, ""},
		{"plain text that looks versioned", sealedPrefix + sessionToken, before, ""},
		{"truncated", sealedOld[:len(sealedOld)-4], before, ""},
		{"empty", "", before, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := srv.Do("HSET", "pushgate:{iv}:state", "token", tc.stored); err != nil {
				t.Fatal(err)
			}
			if sh, err := tc.reader.Load(ctx, "iv"); err != nil || sh.Token != tc.want {
				t.Fatalf("Load = %q, %v; want %q", sh.Token, err, tc.want)
			}
		})
	}
}

// TestUnopenedTokenIsLoggedOnceWithoutIt: a node with another secret
// knows no token for the interview, still reads its changes, and warns
// once per interview without the token or its sealed form.
func TestUnopenedTokenIsLoggedOnceWithoutIt(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := newNode(t, srv)
	logs := &testenv.Buffer{}
	other := newNodeWith(t, srv, Config{Secret: newSecret, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	change := flow.Update{InterviewID: "iv", Status: "ID_VALIDATION_FINISHED", Seq: 5}
	for _, id := range []string{"iv", "iv2"} {
		if err := a.Share(ctx, id, sessionToken); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Commit(ctx, 0, change, false); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		sh, err := other.Load(ctx, "iv")
		if err != nil || sh.Token != "" || !slices.Equal(sh.History, []flow.Update{change}) {
			t.Fatalf("Load with another secret = %+v, %v; want no token and the change", sh, err)
		}
	}
	if sh, _ := other.Load(ctx, "iv2"); sh.Token != "" {
		t.Fatalf("Load of iv2 with another secret: token %q", sh.Token)
	}
	got := logs.String()
	if n := strings.Count(got, "stored session token does not open"); n != 2 || !strings.Contains(got, "level=WARN") {
		t.Fatalf("logged %d warnings for 2 interviews loaded 4 times, want 2 at warn:\n%s", n, got)
	}
	if sealed := rawToken(t, srv, "iv"); strings.Contains(got, sessionToken) || strings.Contains(got, sealed) || strings.Contains(got, sealed[len(sealedPrefix):20]) {
		t.Fatalf("the logs show the token or its sealed form:\n%s", got)
	}
}

// rawToken reads an interview's token field as Redis holds it.
func rawToken(t *testing.T, srv *redistest.Server, interviewID string) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	defer rdb.Close()
	v, err := rdb.HGet(context.Background(), "pushgate:{"+interviewID+"}:state", "token").Result()
	if err != nil {
		t.Fatalf("HGET token of %s: %v", interviewID, err)
	}
	return v
}

var quiet = slog.New(slog.DiscardHandler)
