package sse

import (
	"io"
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test of the package, internal or external,
// leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
