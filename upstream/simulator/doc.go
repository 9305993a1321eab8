// Package simulator serves the upstream onboarding API (Incode Omni) over
// HTTP, so the gateway runs and is tested without the real upstream.
//
//	upstream.Client ──/omni/..., /0/omni/...──▶ Simulator (counted in Stats, Faults applied)
//	browser iframe  ──GET /flow/{id}?key=K───▶ flow page ──POST /flow/{id}/status|score, X-Flow-Key: K──▶ Simulator
//	tests           ──SetStatus/SetScore/SetFaults, or /sim/... over HTTP──▶ Simulator
//	Simulator       ──POST every status change (retried on the upstream's schedule)──▶ webhook URL
//
// The flow page walks a user through the steps of an onboarding (ID capture,
// ID confirmation, selfie, finish with a chosen score outcome); each step sets
// the status the gateway then reads through the upstream API. The onboarding
// URL carries the interview's flow key K, the page's only credential. The
// control API (/sim/...) answers any program when the Simulator listens on
// loopback (Config.Addr), else only requests with Config.ControlToken; it
// refuses what a web page can send (see access.go).
// A session whose flow has not ended by its flow timeout gets status
// EXPIRED. Interviews live in memory for the life of the Simulator; Close
// stops its timers and webhook sender.
//
// cmd/pushgate-sim runs it on its own; cmd/pushgate mounts it in its default
// mode.
package simulator
