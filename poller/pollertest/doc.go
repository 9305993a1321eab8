// Package pollertest has hand-written fakes of what a poller.Manager talks
// to, for the tests of every package that runs one: a Source standing for
// the upstream (and Upstream, one that also knows its health and answers
// probes), and a Recorder standing for the Publisher.
// It also reads the Manager's metrics as a scrape would.
//
// Where it sits: it replaces the step before the poller (upstream) and the
// one after it (sse's Broker) in tests.
package pollertest
