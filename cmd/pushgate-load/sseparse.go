package main

import (
	"bytes"
	"errors"
)

// maxSSELine caps one SSE line; a longer one means the stream is not what
// pushgate sends, and buffering it would defeat the small per-connection
// footprint.
const maxSSELine = 16 << 10

var errSSELineTooLong = errors.New("SSE line longer than 16 KiB")

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	ID    string
	Event string // "message" when the stream named none
	Data  string // data lines joined with "\n"
}

// sseParser turns an SSE body into events, following the WHATWG rules that
// matter here: lines end in LF or CRLF, ":" starts a comment, a blank line
// dispatches, the id persists across events. Bytes may be split anywhere
// across Feed calls; the parser keeps only the current partial line and the
// fields of the event being built. The zero value is ready.
type sseParser struct {
	partial []byte // start of a line whose end has not arrived yet
	id      string
	event   string
	data    []byte
	hasData bool
}

// Feed parses b and calls emit for each completed event, in order.
func (p *sseParser) Feed(b []byte, emit func(sseEvent)) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(p.partial)+len(b) > maxSSELine {
				return errSSELineTooLong
			}
			p.partial = append(p.partial, b...)
			return nil
		}
		line := b[:i]
		if len(p.partial) > 0 {
			p.partial = append(p.partial, line...)
			line = p.partial
		}
		p.line(bytes.TrimSuffix(line, []byte("\r")), emit)
		p.partial = p.partial[:0]
		b = b[i+1:]
	}
	return nil
}

// line handles one complete line; it copies what it keeps, since line may
// alias p.partial.
func (p *sseParser) line(line []byte, emit func(sseEvent)) {
	if len(line) == 0 {
		p.dispatch(emit)
		return
	}
	if line[0] == ':' {
		return // comment, e.g. ": heartbeat"
	}
	name, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(name) {
	case "data":
		if p.hasData {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.hasData = true
	case "event":
		p.event = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.id = string(value)
		}
	}
}

func (p *sseParser) dispatch(emit func(sseEvent)) {
	if p.hasData {
		ev := sseEvent{ID: p.id, Event: p.event, Data: string(p.data)}
		if ev.Event == "" {
			ev.Event = "message"
		}
		emit(ev)
	}
	p.event, p.data, p.hasData = "", p.data[:0], false
}
