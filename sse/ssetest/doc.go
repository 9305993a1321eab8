// Package ssetest reads Server-Sent Events streams the way a browser's
// EventSource does (WHATWG HTML, "Event stream interpretation"), for the
// tests of every package that reads pushgate's streams and for its load
// tool. It knows nothing of how pushgate writes them.
//
// Where it sits: at the end of the flow upstream -> poller -> sse -> page,
// in the page's place.
package ssetest
