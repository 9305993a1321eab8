package sse

import (
	"io"
	"log/slog"
	"testing"

	"github.com/pushgate/pushgate/internal/testenv"
	"go.uber.org/goleak"
)

// TestMain checks that no test of the package, internal or external,
// leaves a goroutine behind.
func TestMain(m *testing.M) {
	testenv.Parallel(4) // the parallel tests wait out upstream outages
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
