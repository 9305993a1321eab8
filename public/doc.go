// Package public holds the browser page pushgate serves at "/": index.html
// loads style.css and app.js, which start (or resume) an onboarding session
// through GET /onboarding-url, show the flow in an iframe, follow its status
// over GET /events (Server-Sent Events, falling back to polling
// GET /onboarding-status) and, once the status is ONBOARDING_FINISHED, close
// the iframe and show the outcome of GET /fetch-score.
//
// The tab keeps its interview in sessionStorage, and how it went: a reload
// resumes the flow, shows the verdict again, or says the session ended. The
// page starts a session by itself only with nothing stored; otherwise only
// a click ("Start a new verification") does. With -public-sessions=false
// it tells users to go back to the site that sent them.
//
// The page needs no inline script or style, so it runs under a CSP of
// "default-src 'self'; script-src 'self'; style-src 'self'; frame-src <flow origins>".
// index.html is a template: the gateway fills in the iframe's allow
// attribute, the device features for the flow origins.
//
// Where it sits: it is the last step of the flow upstream -> poller -> sse
// -> page; sse serves it.
package public
