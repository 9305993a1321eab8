package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
)

// Faults make the upstream API routes (/omni/..., /0/omni/...) misbehave.
// They are played in field order: Hang, then latency, then an injected
// error, then a malformed answer. Control routes and the flow page are never
// affected. The zero value injects nothing.
type Faults struct {
	LatencyMS     int     `json:"latency_ms"`     // delay before answering
	ErrorRate     float64 `json:"error_rate"`     // 0..1 fraction of calls answered with Status
	Status        int     `json:"status"`         // HTTP status of injected errors; 0 means 503
	RetryAfterS   int     `json:"retry_after_s"`  // Retry-After seconds on injected errors when > 0
	MalformedRate float64 `json:"malformed_rate"` // 0..1 fraction answered 200 with broken JSON
	Hang          bool    `json:"hang"`           // answer nothing until the request's context ends
	// Interviews limits the faults to calls about these interview ids (by
	// session token or admin id); empty means every call.
	Interviews []string `json:"interviews,omitempty"`
}

// ParseFaults reads Faults from JSON, as POST /sim/faults takes them: for
// a -faults flag that sets them at start.
func ParseFaults(text string) (Faults, error) {
	var f Faults
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Faults{}, fmt.Errorf("simulator: faults: %w", err)
	}
	if err := f.validate(); err != nil {
		return Faults{}, fmt.Errorf("simulator: faults: %w", err)
	}
	return f, nil
}

// applies reports whether the faults touch a call about interviewID ("" for
// a call about no interview yet, such as start).
func (f Faults) applies(interviewID string) bool {
	return len(f.Interviews) == 0 || slices.Contains(f.Interviews, interviewID)
}

// maxLatencyMS caps LatencyMS set over HTTP.
const maxLatencyMS = 10 * 60 * 1000

// validate reports values the control API refuses.
func (f Faults) validate() error {
	switch {
	case f.LatencyMS < 0 || f.LatencyMS > maxLatencyMS:
		return errors.New("latency_ms must be within 0..600000")
	case !inUnit(f.ErrorRate):
		return errors.New("error_rate must be within 0..1")
	case !inUnit(f.MalformedRate):
		return errors.New("malformed_rate must be within 0..1")
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return errors.New("status must be 0 or within 400..599")
	case f.RetryAfterS < 0:
		return errors.New("retry_after_s must not be negative")
	}
	return nil
}

func inUnit(x float64) bool { return !math.IsNaN(x) && x >= 0 && x <= 1 }

// SetFaults replaces the faults in force. A Status outside 400..599 means 503.
func (s *Simulator) SetFaults(f Faults) {
	if f.Status < 400 || f.Status > 599 {
		f.Status = http.StatusServiceUnavailable
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	s.log.Info("simulator: faults set", "latency_ms", f.LatencyMS, "error_rate", f.ErrorRate,
		"status", f.Status, "retry_after_s", f.RetryAfterS, "malformed_rate", f.MalformedRate, "hang", f.Hang)
}

// ClearFaults stops injecting faults. Requests already hanging keep hanging
// until their context ends.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	s.faults = Faults{}
	s.mu.Unlock()
	s.log.Info("simulator: faults cleared")
}
