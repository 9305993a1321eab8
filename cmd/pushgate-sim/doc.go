// Command pushgate-sim runs the upstream onboarding API simulator on its own:
// the upstream API, the control API (/sim/...) and the flow page.
//
//	pushgate-sim -addr 127.0.0.1:8090 -api-key KEY -admin-token TOKEN
//	pushgate-sim -addr 0.0.0.0:8090 -control-token "$(openssl rand -hex 32)"
//	pushgate-sim -webhook-url http://127.0.0.1:8080/webhooks/onboarding-status/SECRET -webhook-retry-scale 0.001 -flow-timeout 2m
//
// On a loopback -addr the control API answers anyone who reaches it; beyond
// loopback it answers only "Authorization: Bearer <-control-token>", and is
// off without -control-token. The flow page needs neither: the key in each
// onboarding URL opens that interview's page.
//
// Where it sits: it stands for the upstream, the first step of the flow
// upstream -> poller -> sse -> page, for a cluster of gateway nodes that
// must share one upstream.
package main
