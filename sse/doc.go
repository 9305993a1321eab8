// Package sse is pushgate's browser-facing HTTP surface: the page, the
// session API and the Server-Sent Events streams, routed with gorilla/mux
// and streamed with r3labs/sse.
//
// Data flow:
//
//	GET /onboarding-url ─▶ Upstream.Start + OnboardingURL ─▶ poller.Register, token + cookie
//	GET /events ─▶ token ─▶ poller.Current (snapshot) ─▶ poller.Watch ─▶ Broker.join
//	                 └─▶ r3labs ServeHTTP(conn) ◀── r3labs stream ◀── Broker.Publish ◀── poller
//	GET /onboarding-status, /fetch-score ─▶ token ─▶ poller.Current (shared singleflight read)
//	POST /webhooks/onboarding-status ─▶ bearer secret ─▶ poller.Push ─▶ Broker.Publish
//
// conn wraps each client's ResponseWriter: it writes the snapshot once
// r3labs has registered the client, drops events the client already has,
// runs every write under a deadline, and ends the stream after
// ONBOARDING_FINISHED. Broker owns the r3labs server and works around its
// sharp edges. LimitListener keeps open connections under the open-file
// limit and refuses the rest with a 503. Errors become HTTP statuses and
// JSON bodies in httpError only.
package sse
