// Command pushgate-sim runs the upstream onboarding API simulator on its own:
// the upstream API, the control API (/sim/...) and the flow page.
//
//	pushgate-sim -addr 127.0.0.1:8090 -api-key KEY -admin-token TOKEN
//
// Where it sits: it stands for the upstream, the first step of the flow
// upstream -> poller -> sse -> page, for a cluster of gateway nodes that
// must share one upstream.
package main
