// Command pushgate runs the gateway: the page, the session API and the SSE
// streams, in front of the upstream onboarding API or, when no upstream is
// configured, in front of the built-in simulator on its own listener. It
// turns flags and environment into a gateway.Config, makes the
// process-wide settings, and runs the gateway until SIGINT or SIGTERM.
//
// Where it sits: it starts the flow upstream -> poller -> sse -> page,
// whose parts package gateway assembles.
package main
