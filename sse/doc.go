// Package sse is pushgate's browser-facing HTTP surface: the page, the
// session API, the upstream's webhook and the Server-Sent Events streams,
// routed with gorilla/mux and streamed with r3labs/sse. It is the last
// step of the flow upstream -> poller -> sse -> page. It knows the
// upstream and the node's statuses only through the small interfaces it
// declares (Upstream, Statuses, and the behaviours of errors mapped in
// httpError), and statuses and event ids through package poller/flow.
//
// Data flow:
//
//	GET /onboarding-url ─▶ sessions.start: Upstream.StartSession ─▶ Statuses.Register ─▶ token + cookie
//	GET /events ─▶ token ─▶ Statuses.Current (snapshot) ─▶ Statuses.Watch ─▶ Broker.join
//	                 └─▶ r3labs ServeHTTP(conn) ◀── wake-up ◀── Broker.Publish ◀── Statuses (poller)
//	                            conn.Flush: snapshot, then the stream's changes ◀──┘
//	GET /onboarding-status, /fetch-score ─▶ token ─▶ sessions: Statuses.Current, Upstream.Score
//	POST /webhooks/token ─▶ client credentials ─▶ access token
//	POST /webhooks/onboarding-status[/{secret}] ─▶ bearer or path secret ─▶ Statuses.Push ─▶ Broker.Publish
//
// conn wraps each client's ResponseWriter: it writes the snapshot once
// r3labs has registered the client, then the changes the Broker published
// into the interview's stream that are news to the client (decided from
// the updates, never from r3labs' bytes, which only wake it up), runs
// every write under a deadline, and ends the stream after the flow
// finished. Broker owns the r3labs server and works around its sharp
// edges; wire.go owns the wire format. LimitListener keeps open
// connections under the open-file limit and the per-client caps: it
// closes idle ones first to make room, still serves probes over a cap,
// and refuses the rest with a 503 or a 429.
//
// Files: routes.go (Handler, routes) and routelist.go (the routes a
// Config serves), config.go, api.go (the page's session, status, score
// and health routes), serverapi.go (the backend's /v1 API), stream.go
// (/events), session.go (starting sessions and reading scores, apart from
// HTTP) and scorecache.go, auth.go and token.go (tokens, cookies),
// middleware.go (security headers, CORS, body cap, request metrics),
// jsonbody.go (one JSON object per body), clientip.go (the client's
// address behind trusted proxies), ratelimit.go, drain.go (refusals and
// in-flight requests during a shutdown), webhook.go and webhookauth.go
// (the upstream's webhook and its three ways to authenticate), relay.go
// (what the webhooks bring, handed to package relay), page.go
// (index.html), floworigin.go (the flow origins the page frames),
// client.go (client.js, and its classic-script build), statuses.go (the
// Statuses it needs), broker.go, fanout.go (an interview's stream: the
// chain of changes its conns follow),
// conn.go, wire.go, listener.go (its idle connections in
// listener_idle.go, those over a cap in listener_overcap.go), errors.go
// (the one place errors become statuses and JSON bodies), refusallog.go
// (refusals logged sampled, refused origins once a minute) and
// metrics.go.
package sse
