package ssetest

import (
	"reflect"
	"testing"
)

func TestParser(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		keepRetry bool
		want      []Event
		fields    []string
	}{
		{name: "one event", in: "id: 1\ndata: {}\nevent: status\nretry: 2000\n\n",
			want:   []Event{{ID: "1", Type: "status", Data: "{}", Retry: "2000"}},
			fields: []string{"id", "data", "event", "retry"}},
		{name: "comments, CRLF, two data lines, id carries over",
			in: "id: 7\ndata: {\"a\":1}\nevent: status\nretry: 2000\n\n" +
				": heartbeat\n\n" + // a comment dispatches nothing
				"data: line one\r\ndata:line two\r\n\r\n" + // no space after the colon
				"event: status\n\n" + // no data: nothing to dispatch
				"id: 9\nevent: status\ndata: {\"b\":2}\n\n" +
				"data: no end yet",
			want: []Event{
				{ID: "7", Type: "status", Data: `{"a":1}`, Retry: "2000"},
				{ID: "7", Type: "message", Data: "line one\nline two"},
				{ID: "9", Type: "status", Data: `{"b":2}`},
			},
			fields: []string{"id", "data", "event", "retry", ":", "data", "data", "event", "id", "event", "data"}},
		{name: "CR and CRLF end lines", in: "data:a\r\rdata:  b\r\n\r\n",
			want:   []Event{{Type: "message", Data: "a"}, {Type: "message", Data: " b"}},
			fields: []string{"data", "data"}},
		{name: "an empty data line", in: "id: 7\ndata: a\ndata\n\ndata: c\n\n",
			want:   []Event{{ID: "7", Type: "message", Data: "a\n"}, {ID: "7", Type: "message", Data: "c"}},
			fields: []string{"id", "data", "data", "data"}},
		{name: "no data, no dispatch", in: ": hi\nevent: status\nretry: x\n\n",
			fields: []string{":", "event", "retry"}},
		{name: "NUL id and bad retry ignored", in: "id: 1\x00\nretry: 1s\ndata: a\n\n",
			want: []Event{{Type: "message", Data: "a"}}, fields: []string{"id", "retry", "data"}},
		{name: "byte order mark, unterminated event dropped", in: "\ufeffdata: a\n\ndata: b\n",
			want: []Event{{Type: "message", Data: "a"}}, fields: []string{"data", "data"}},
		{name: "a retry hint alone, kept", in: "id: 3\ndata: x\n\nretry: 4000\n\n", keepRetry: true,
			want:   []Event{{ID: "3", Type: "message", Data: "x"}, {ID: "3", Type: "message", Retry: "4000"}},
			fields: []string{"id", "data", "retry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Every split of the input into two Feed calls gives the same
			// events and fields.
			for cut := 0; cut <= len(tc.in); cut++ {
				var got []Event
				var fields []string
				p := Parser{KeepRetry: tc.keepRetry, Field: func(name string) { fields = append(fields, name) }}
				emit := func(ev Event) { got = append(got, ev) }
				if err := p.Feed([]byte(tc.in[:cut]), emit); err != nil {
					t.Fatal(err)
				}
				if err := p.Feed([]byte(tc.in[cut:]), emit); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(fields, tc.fields) {
					t.Fatalf("split at %d: got %+v, fields %q; want %+v, %q", cut, got, fields, tc.want, tc.fields)
				}
			}
			// One byte at a time too.
			var n int
			p := Parser{KeepRetry: tc.keepRetry}
			for i := range len(tc.in) {
				p.Feed([]byte{tc.in[i]}, func(Event) { n++ })
			}
			if n != len(tc.want) {
				t.Errorf("byte by byte: %d events, want %d", n, len(tc.want))
			}
		})
	}
}

func TestParserLineCap(t *testing.T) {
	p := Parser{MaxLine: 16}
	if err := p.Feed([]byte("data: 0123456789"), func(Event) {}); err != nil {
		t.Fatalf("a line at the cap: %v", err)
	}
	if err := p.Feed([]byte("x"), func(Event) {}); err != ErrLineTooLong {
		t.Fatalf("a line over the cap: %v, want ErrLineTooLong", err)
	}
}
