package poller

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Config tunes a Manager. The zero value of every field selects its default.
type Config struct {
	// Interval is the time between two upstream reads of one interview.
	// Zero means 1s.
	Interval time.Duration
	// Jitter is the largest random delay added to each wait, as a fraction
	// of Interval, so that many interviews do not tick together. Zero means
	// 0.1; a negative value turns jitter off.
	Jitter float64
	// Linger is how long a poller keeps running after its last watcher
	// left. Zero means 10s.
	Linger time.Duration
	// CallTimeout bounds each upstream read, independent of the callers
	// waiting for it. Zero means 5s.
	CallTimeout time.Duration
	// ProbeInterval is the time between two probes of the upstream, when
	// the Source is a Prober: one per interval for the whole node while
	// the upstream fails, after a failed status call, or while this node
	// makes no status calls (so readiness follows the upstream without
	// traffic); none while calls succeed. Zero means Interval.
	ProbeInterval time.Duration
	// MaxConcurrent caps upstream reads in flight across all interviews.
	// Zero means 64.
	MaxConcurrent int
	// BackoffMax caps the exponential backoff after failed reads. Zero
	// means 30s.
	BackoffMax time.Duration
	// Retention is how long the state of an interview nobody watches is
	// kept (its last status, sequence number and session token). Zero
	// means 1h.
	Retention time.Duration
	// PushInterval is the poll interval of an interview whose changes the
	// upstream pushes (Push, from its webhook): polling is then only a
	// safety net. Zero means 15s.
	PushInterval time.Duration
	// PushSilence is how long after the last push an interview is polled
	// at PushInterval; after it, polling returns to Interval. Zero means 1m.
	PushSilence time.Duration
	// Ceiling is the limiter every upstream status read waits on, across
	// all interviews, so an outage's retries or a recovery cannot flood
	// the upstream. Make it with NewCeiling; the owner may share it with
	// its other upstream calls. Nil means no ceiling.
	Ceiling *rate.Limiter
	// Observer is told of every change this node commits (see Observer).
	// Nil tells no one.
	Observer Observer
	// Cluster shares interviews with the other gateway nodes: leases so
	// that one node reads each interview, the shared status and its
	// changes. Nil means this node is alone.
	Cluster Cluster
	// Metrics registers the Manager's Prometheus collectors. Nil records
	// no metrics.
	Metrics prometheus.Registerer
	// Logger receives read failures and recoveries. Nil means slog.Default().
	Logger *slog.Logger
}

// setDefaults checks c (see Check) and fills the zero fields with their
// defaults.
func (c *Config) setDefaults() error {
	if err := c.Check(fieldName); err != nil {
		return fmt.Errorf("poller: %w", err)
	}
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&c.Interval, time.Second}, {&c.Linger, 10 * time.Second}, {&c.CallTimeout, 5 * time.Second},
		{&c.BackoffMax, 30 * time.Second}, {&c.Retention, time.Hour}, {&c.PushInterval, 15 * time.Second},
		{&c.PushSilence, time.Minute},
	} {
		if *d.field == 0 {
			*d.field = d.def
		}
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = c.Interval
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.Jitter < 0 {
		c.Jitter = 0
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// fieldName names a Config field as it is: New's refusals name fields so.
func fieldName(field string) string { return field }

// Check refuses the settings of c that cannot work, and returns the first
// refusal. Each rule of a setting lives here once: New calls Check, and a
// command calls it to check its flags before anything is built. The
// refusal names each field by name(field): New by the field's own name
// ("poller: Retention must not be negative"), a command by the flag that
// sets it ("-retention must not be negative"). Zero values pass, as they
// select defaults.
func (c *Config) Check(name func(field string) string) error {
	for _, d := range []struct {
		field string
		value time.Duration
	}{
		{"Interval", c.Interval}, {"Linger", c.Linger}, {"CallTimeout", c.CallTimeout}, {"BackoffMax", c.BackoffMax},
		{"Retention", c.Retention}, {"PushInterval", c.PushInterval}, {"PushSilence", c.PushSilence}, {"ProbeInterval", c.ProbeInterval},
	} {
		if d.value < 0 {
			return fmt.Errorf("%s must not be negative", name(d.field))
		}
	}
	switch {
	case c.MaxConcurrent < 0:
		return fmt.Errorf("%s must not be negative", name("MaxConcurrent"))
	case c.Jitter > 1:
		return fmt.Errorf("%s %v is above 1", name("Jitter"), c.Jitter)
	}
	return nil
}
