package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/pushgate/pushgate/sse/ssetest"
)

// The clients below are deliberately bare: one goroutine per connection, a
// 1 KiB bufio.Reader over the raw net.Conn and a 512-byte read buffer, the
// HTTP/1.1 request written by hand. http.Transport would add two goroutines
// and 8 KiB of buffers per connection, which at 20,000 connections per
// process is what we are trying to measure on the server, not spend here.
const (
	readerSize     = 1 << 10
	scratchSize    = 512
	connectTimeout = 15 * time.Second // covers SYN retransmits (1 s, 3 s, 7 s) of a full backlog
)

// httpStatusError is a non-2xx answer, with the start of its body.
type httpStatusError struct {
	Code int
	Body string
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d %s", e.Code, e.Body) }

// refused reports whether the server turned the request down on purpose
// (a cap or a rate limit), as opposed to failing or not answering.
func (e *httpStatusError) refused() bool {
	return e.Code == http.StatusTooManyRequests || e.Code == http.StatusServiceUnavailable
}

// sourceIP is the loopback source address of connection conn: connections
// are spread round-robin over 127.0.0.1..127.0.0.n, since one source address
// has only ~28k ephemeral ports towards one server.
func sourceIP(conn, n int) net.IP {
	if n <= 1 {
		return net.IPv4(127, 0, 0, 1)
	}
	return net.IPv4(127, 0, 0, byte(1+conn%n))
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h; the
// frozen syscall package lacks it.
const ipBindAddressNoPort = 24

// bindAddressNoPort lets the kernel pick the source port at connect time,
// not at bind time. Bound first, a port is unique per source address
// whatever the destination, and ports in TIME_WAIT from an earlier run
// are unusable: a second 10,000-connection run in a row then fails with
// EADDRNOTAVAIL. Picked at connect, ports are shared across destinations
// and TIME_WAIT ones are reused on loopback (tcp_tw_reuse).
func bindAddressNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	return errors.Join(err, serr)
}

// closeAtStop closes c when ctx ends, with a reset instead of a FIN: the
// connection is ours to drop, and a reset leaves no TIME_WAIT port behind
// on this side for the next run. It unblocks the connection's Read.
func closeAtStop(ctx context.Context, c net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { resetClose(c) })
}

// resetClose closes c with a reset (SO_LINGER 0).
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// request is a GET request line and headers, written by hand.
func request(host, pathQuery string, headers ...string) []byte {
	b := []byte("GET " + pathQuery + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b = append(b, headers[i]+": "+headers[i+1]+"\r\n"...)
	}
	return append(b, "\r\n"...)
}

func eventsRequest(host string, iv assigned) []byte {
	return request(host, "/events?interviewId="+url.QueryEscape(iv.ID), "X-Token", iv.Token, "Accept", "text/event-stream")
}

func pollRequest(host string, iv assigned) []byte {
	return request(host, "/onboarding-status?interviewId="+url.QueryEscape(iv.ID))
}

// dial connects from the source address of connection conn and sends req;
// it answers the response head. Non-200 answers come back as
// *httpStatusError, their connection closed.
func dial(ctx context.Context, target string, conn, sourceIPs int, req []byte) (net.Conn, *bufio.Reader, *http.Response, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: sourceIP(conn, sourceIPs)}, Timeout: connectTimeout, Control: bindAddressNoPort}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, nil, nil, err
	}
	br := bufio.NewReaderSize(c, readerSize)
	resp, err := roundTrip(c, br, req, connectTimeout)
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	return c, br, resp, nil
}

// roundTrip sends req on c and reads the answer's head within timeout.
// A non-200 answer is read and returned as *httpStatusError.
func roundTrip(c net.Conn, br *bufio.Reader, req []byte, timeout time.Duration) (*http.Response, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		return nil, &httpStatusError{Code: resp.StatusCode, Body: string(trimBody(body))}
	}
	c.SetDeadline(time.Time{})
	return resp, nil
}

func trimBody(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	if len(b) > 200 {
		b = append(b[:200:200], "..."...)
	}
	return b
}

// stream is one SSE subscriber: it connects, then records every status
// event until the server ends the stream or ctx ends.
func (w *worker) stream(ctx context.Context, sl *slot, iv assigned, conn int) {
	c, br, resp, err := w.connect(ctx, sl, conn, eventsRequest(w.hosts[sl.report.Node], iv))
	if err != nil {
		return
	}
	body := io.Reader(resp.Body)
	if slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
		// resp.Body would keep the whole Response (headers and all) alive
		// for the trailers; reading the chunks directly lets it go.
		body = httputil.NewChunkedReader(br)
	}
	resp = nil
	defer w.open.Add(-1)
	defer c.Close()
	defer closeAtStop(ctx, c)()
	p := ssetest.Parser{MaxLine: maxSSELine}
	buf := make([]byte, scratchSize)
	emit := func(ev ssetest.Event) { w.onEvent(sl, iv, ev) }
	for {
		n, rerr := body.Read(buf)
		if err := p.Feed(buf[:n], emit); err != nil {
			w.fail(sl, "stream", err)
			return
		}
		if rerr != nil {
			w.streamEnded(ctx, sl, rerr)
			return
		}
	}
}

// maxSSELine caps one SSE line; a longer one means the stream is not what
// pushgate sends, and buffering it would defeat the small per-connection
// footprint.
const maxSSELine = 16 << 10

// eventData is the JSON of a status event.
type eventData struct {
	InterviewID string `json:"interviewId"`
	Status      string `json:"onboardingStatus"`
	Seq         int64  `json:"seq"`
}

func (w *worker) onEvent(sl *slot, iv assigned, ev ssetest.Event) {
	at := time.Now().UnixNano()
	if ev.Type != "status" {
		return
	}
	var d eventData
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil || d.InterviewID != iv.ID {
		w.fail(sl, "stream", fmt.Errorf("event data is not a status of this interview: %.80q", ev.Data))
		return
	}
	if d.Seq == 0 {
		d.Seq, _ = strconv.ParseInt(ev.ID, 10, 64)
	}
	w.record(sl, receipt{Status: statusIndex(d.Status), Seq: d.Seq, At: at})
}

// streamEnded classifies the end of a stream: our own stop, the server's
// end after ONBOARDING_FINISHED (the contract), or anything else (an error).
func (w *worker) streamEnded(ctx context.Context, sl *slot, err error) {
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, io.EOF) && sl.sawFinish():
	case errors.Is(err, io.EOF):
		w.fail(sl, "stream", errors.New("ended by the server before ONBOARDING_FINISHED"))
	default:
		w.fail(sl, "stream", err)
	}
}

// browse is one polling browser: it asks the backend for the status at
// once and then every interval, on one keep-alive connection, until it sees
// ONBOARDING_FINISHED (the guide's page stops there) or ctx ends.
func (w *worker) browse(ctx context.Context, sl *slot, iv assigned, conn int) {
	req := pollRequest(w.hosts[sl.report.Node], iv)
	c, br, resp, err := w.connect(ctx, sl, conn, req)
	if err != nil {
		return
	}
	defer w.open.Add(-1)
	defer resetClose(c) // the browser leaves: no TIME_WAIT port left here
	defer closeAtStop(ctx, c)()
	tick := time.NewTicker(w.a.Interval)
	defer tick.Stop()
	for {
		w.polls.Add(1)
		if err := w.onPoll(sl, resp); err != nil {
			w.fail(sl, "poll", err)
		}
		if sl.sawFinish() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if resp, err = roundTrip(c, br, req, connectTimeout); err != nil {
			w.pollFailed(ctx, sl, err)
			var he *httpStatusError
			if !errors.As(err, &he) {
				return // the connection is unusable
			}
			resp = nil
		}
	}
}

func (w *worker) pollFailed(ctx context.Context, sl *slot, err error) {
	if ctx.Err() == nil {
		w.fail(sl, "poll", err)
	}
}

// onPoll records the status of one poll answer when it differs from the
// last one this browser saw; the answer's arrival is the receipt time.
func (w *worker) onPoll(sl *slot, resp *http.Response) error {
	if resp == nil {
		return nil // a refused poll, counted already
	}
	at := time.Now().UnixNano()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if err != nil {
		return err
	}
	var d eventData
	if err := json.Unmarshal(body, &d); err != nil || d.Status == "" {
		return fmt.Errorf("answer is not a status: %.80q", body)
	}
	idx := statusIndex(d.Status)
	if n := len(sl.report.Receipts); n == 0 || sl.report.Receipts[n-1].Status != idx {
		w.record(sl, receipt{Status: idx, At: at})
	}
	return nil
}
