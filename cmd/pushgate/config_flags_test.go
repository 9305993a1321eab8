package main

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/sse"
	"github.com/pushgate/pushgate/upstream"
)

// TestHelpGroupsFlagsByConcern: -h lists every flag once, under the title
// of its concern, the concerns in the order define declares them.
func TestHelpGroupsFlagsByConcern(t *testing.T) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	groups := new(config).define(fs)
	var help strings.Builder
	parseConfig([]string{"-h"}, func(string) string { return "" }, &help)
	listed := map[string]int{}
	title, next := "", 0
	for line := range strings.SplitSeq(help.String(), "\n") {
		switch {
		case next < len(groups) && line == groups[next].title+":":
			title = groups[next].title
			next++
		case strings.HasPrefix(line, "  -"):
			name := strings.TrimPrefix(strings.Fields(line)[0], "-")
			if title == "" {
				t.Errorf("-%s is listed before the first concern's title", name)
			}
			listed[name]++
		}
	}
	if next != len(groups) {
		t.Errorf("-h shows %d of the %d concerns' titles in order:\n%s", next, len(groups), help.String())
	}
	fs.VisitAll(func(f *flag.Flag) {
		if listed[f.Name] != 1 {
			t.Errorf("-h lists -%s %d times, want once", f.Name, listed[f.Name])
		}
	})
}

// TestFlagNamesAreFlagsAndFields: each field a package's Check may name
// is a field of that package's Config, and the flag it is reported as
// is one of the command's.
func TestFlagNamesAreFlagsAndFields(t *testing.T) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	new(config).define(fs)
	for _, tc := range []struct {
		config any
		flags  flagNames
	}{{upstream.Config{}, upstreamFlags}, {sse.Config{}, httpFlags}, {poller.Config{}, pollerFlags}} {
		typ := reflect.TypeOf(tc.config)
		for field, name := range tc.flags {
			if _, ok := typ.FieldByName(field); !ok {
				t.Errorf("%s has no field %s", typ, field)
			}
			if fs.Lookup(strings.TrimPrefix(name, "-")) == nil {
				t.Errorf("%s.%s: no flag %s", typ, field, name)
			}
		}
	}
}

// TestRefusalsNameTheFlag: a value a package's rule refuses stops the
// start with the flag named and the package's reason.
func TestRefusalsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-api-token", "short"}, "-api-token: each API token must be 16 to 256 bytes of printable ASCII without spaces or commas"},
		{[]string{"-api-token", strings.Repeat("t", 257)}, "-api-token: each API token must be 16 to 256 bytes"},
		{[]string{"-api-token", "a-token-of-16-bytes-or-more-\u00e9"}, "-api-token: each API token must be"},
		{[]string{"-api-token", "a-token-with-a\ttab-inside"}, "-api-token: each API token must be"},
		{[]string{"-client-ip-header", "X-Real-IP"}, "-client-ip-header needs -trusted-proxies: without them"},
		{[]string{"-webhook-client-id", "incode"}, "-webhook-client-id and -webhook-client-secret go together"},
		{[]string{"-webhook-secret", "short"}, "-webhook-secret must be at least 32 bytes"},
		{[]string{"-webhook-header", "Host: " + strings.Repeat("v", 32)}, `-webhook-header: "Host" is a header the server or a proxy drops`},
		{[]string{"-flow-id", "a,b,a"}, `-flow-id: flow "a" is listed twice`},
		{[]string{"-allowed-origins", "https://a.example/path"}, `-allowed-origins: "https://a.example/path" is not an origin`},
		{[]string{"-languages", "english!"}, `-languages: "english!" is not a language tag`},
		{[]string{"-secret", "short"}, "-secret must be at least 16 bytes"},
		{[]string{"-retention", "-1s"}, "-retention must not be negative"},
		{[]string{"-max-upstream-calls", "-1"}, "-max-upstream-calls must not be negative"},
		{[]string{"-admin-password", "pw"}, "-admin-email and -admin-password go together"},
	} {
		_, err := parseConfig(tc.args, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	long := strings.Repeat("t", 256)
	if c, err := parseConfig([]string{"-api-token", long}, func(string) string { return "" }, io.Discard); err != nil || len(c.gw.HTTP.APITokens) != 1 {
		t.Errorf("a 256-byte API token: %v, want it taken", err)
	}
}
