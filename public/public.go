// Package public holds the browser page pushgate serves at "/": index.html
// loads style.css and app.js, which start (or resume) an onboarding session
// through GET /onboarding-url, show the flow in an iframe, follow its status
// over GET /events (Server-Sent Events, falling back to polling
// GET /onboarding-status) and, once the status is ONBOARDING_FINISHED, close
// the iframe and show the outcome of GET /fetch-score.
//
// The page needs no inline script or style, so it runs under a CSP of
// "default-src 'self'; script-src 'self'; style-src 'self'; frame-src <flow origin>".
package public

import "embed"

// Files holds index.html, app.js and style.css at the root of the FS, ready
// for http.FileServer(http.FS(Files)).
//
//go:embed index.html app.js style.css
var Files embed.FS
