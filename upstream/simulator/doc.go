// Package simulator serves the upstream onboarding API (Incode Omni) over
// HTTP, so the gateway runs and is tested without the real upstream.
//
//	upstream.Client ──/omni/..., /0/omni/...──▶ Simulator (counted in Stats, Faults applied)
//	browser iframe  ──GET /flow/{id}──────────▶ flow page ──POST /sim/interviews/{id}/...──▶ Simulator
//	tests           ──SetStatus/SetScore/SetFaults, or /sim/... over HTTP──▶ Simulator
//
// The flow page walks a user through the steps of an onboarding (ID capture,
// ID confirmation, selfie, finish with a chosen score outcome); each step sets
// the status the gateway then reads through the upstream API. Interviews live
// in memory for the life of the Simulator.
//
// cmd/pushgate-sim runs it on its own; cmd/pushgate mounts it in its default
// mode.
package simulator
