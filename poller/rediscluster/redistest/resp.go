package redistest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// call sends one command on a connection of its own and returns the
// reply: a string (status or bulk), an int64, a []any, nil for a null; an
// error reply is returned as the error.
func (s *Server) call(args ...string) (any, error) {
	d := &net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).Dial("tcp", s.Addr)
	} else {
		c, err = d.Dial("tcp", s.Addr)
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, err
	}
	v, err := readReply(bufio.NewReader(c))
	if err != nil {
		return nil, err
	}
	if e, ok := v.(replyError); ok {
		return nil, e
	}
	return v, nil
}

// replyError is an error reply ("-ERR ..."); inside an array it stands
// for that element.
type replyError string

func (e replyError) Error() string { return "redis: " + string(e) }

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("redistest: empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return replyError(line[1:]), nil
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("redistest: unexpected reply %q", line)
}

// text renders a reply as Do returns it.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case []any:
		s := make([]string, len(v))
		for i, e := range v {
			s[i] = text(e)
		}
		return strings.Join(s, "\n")
	case replyError:
		return v.Error()
	}
	return fmt.Sprint(v)
}

// fields turns a flat [key, value, key, value...] reply (SENTINEL MASTER,
// SENTINEL REPLICAS' entries) into a map.
func fields(v any) map[string]string {
	a, _ := v.([]any)
	m := map[string]string{}
	for i := 0; i+1 < len(a); i += 2 {
		m[text(a[i])] = text(a[i+1])
	}
	return m
}
