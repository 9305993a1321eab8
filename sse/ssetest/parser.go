package ssetest

import (
	"bytes"
	"errors"
	"strings"
)

// ErrLineTooLong is returned by Feed for a line longer than MaxLine.
var ErrLineTooLong = errors.New("ssetest: SSE line too long")

// Event is one dispatched event.
type Event struct {
	ID    string // the last event id, which carries over from earlier events
	Type  string // "message" when the stream named none
	Data  string // the data lines, joined with "\n"
	Retry string // the reconnection time this block set, in ms; "" when none
}

// Parser turns an event stream into events. Bytes may be split anywhere
// across Feed calls; the parser keeps only the current partial line and the
// fields of the event being built. The zero value is ready.
type Parser struct {
	// MaxLine caps one line; a longer one fails Feed with ErrLineTooLong.
	// Zero means no cap.
	MaxLine int
	// KeepRetry also dispatches blocks that set only a retry time, as an
	// Event with no Data, so a test can see a final retry hint.
	KeepRetry bool
	// Field, when set, is called with the name of every field line in
	// order, and ":" for every comment line.
	Field func(name string)

	partial []byte // start of a line whose end has not arrived yet
	started bool   // past the start, where a byte order mark may stand
	afterCR bool   // the last line ended in CR: a following LF ends nothing
	id      string
	typ     string
	data    []byte
	hasData bool
	retry   string
}

// Feed parses b and calls emit for each completed event, in order.
func (p *Parser) Feed(b []byte, emit func(Event)) error {
	if !p.started { // a byte order mark may open the stream, split or not
		const bom = "\ufeff"
		p.partial = append(p.partial, b...)
		if len(p.partial) < len(bom) && strings.HasPrefix(bom, string(p.partial)) {
			return nil
		}
		b, p.partial, p.started = bytes.TrimPrefix(p.partial, []byte(bom)), nil, true
	}
	for len(b) > 0 {
		if p.afterCR && b[0] == '\n' {
			b = b[1:]
		}
		p.afterCR = false
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			if p.MaxLine > 0 && len(p.partial)+len(b) > p.MaxLine {
				return ErrLineTooLong
			}
			p.partial = append(p.partial, b...)
			return nil
		}
		line := b[:i]
		if len(p.partial) > 0 {
			p.partial = append(p.partial, line...)
			line = p.partial
		}
		p.line(line, emit)
		p.partial = p.partial[:0]
		p.afterCR = b[i] == '\r'
		b = b[i+1:]
	}
	return nil
}

// line handles one complete line; it copies what it keeps, since line may
// alias p.partial.
func (p *Parser) line(line []byte, emit func(Event)) {
	if len(line) == 0 {
		p.dispatch(emit)
		return
	}
	name, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	if p.Field != nil {
		if len(name) == 0 {
			p.Field(":")
		} else {
			p.Field(string(name))
		}
	}
	switch string(name) {
	case "data":
		if p.hasData {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.hasData = true
	case "event":
		p.typ = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.id = string(value)
		}
	case "retry":
		if len(value) > 0 && strings.Trim(string(value), "0123456789") == "" {
			p.retry = string(value)
		}
	}
}

func (p *Parser) dispatch(emit func(Event)) {
	if p.hasData || (p.KeepRetry && p.retry != "") {
		ev := Event{ID: p.id, Type: p.typ, Data: string(p.data), Retry: p.retry}
		if ev.Type == "" {
			ev.Type = "message"
		}
		emit(ev)
	}
	p.typ, p.data, p.hasData, p.retry = "", p.data[:0], false, ""
}
