package main

import (
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSecretsFromFiles: every secret flag reads from the file its
// PUSHGATE_<NAME>_FILE names, trimmed; a file beside the value, or one
// that is missing, empty or unreadable, stops the start naming the
// variable.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := "an-api-token-of-32-bytes-for-tests"
	env := map[string]string{
		"PUSHGATE_API_TOKEN_FILE":      write("api-token", "\n  "+token+"\n\n"),
		"PUSHGATE_SECRET_FILE":         write("secret", "a-test-secret-of-32-bytes-length\n"),
		"PUSHGATE_WEBHOOK_HEADER_FILE": write("header", "X-Incode-Hook: a-value-of-32-bytes-or-more-for-tests\n"),
	}
	c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.gw.HTTP.APITokens) != 1 || c.gw.HTTP.APITokens[0] != token || c.gw.Secret != "a-test-secret-of-32-bytes-length" ||
		c.gw.HTTP.WebhookHeaderName != "X-Incode-Hook" || c.gw.HTTP.WebhookHeaderValue != "a-value-of-32-bytes-or-more-for-tests" {
		t.Fatalf("from files: tokens %q, secret %q, header %q: %q; want them trimmed", c.gw.HTTP.APITokens, c.gw.Secret, c.gw.HTTP.WebhookHeaderName, c.gw.HTTP.WebhookHeaderValue)
	}

	// A file of several values (a rotation): one per line.
	two := map[string]string{"PUSHGATE_API_TOKEN_FILE": write("tokens", token+"\nthe-next-api-token-of-32-bytes-long\n")}
	if c, err := parseConfig(nil, func(k string) string { return two[k] }, io.Discard); err != nil || len(c.gw.HTTP.APITokens) != 2 {
		t.Errorf("two tokens in a file: %q, %v; want both", c.gw.HTTP.APITokens, err)
	}

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in the error
	}{
		{"flag and file", []string{"-api-token", token}, map[string]string{"PUSHGATE_API_TOKEN_FILE": env["PUSHGATE_API_TOKEN_FILE"]}, "PUSHGATE_API_TOKEN_FILE and -api-token"},
		{"variable and file", nil, map[string]string{"PUSHGATE_SECRET": "a-test-secret-of-32-bytes-length", "PUSHGATE_SECRET_FILE": env["PUSHGATE_SECRET_FILE"]}, "PUSHGATE_SECRET_FILE and -secret"},
		{"missing", nil, map[string]string{"PUSHGATE_API_KEY_FILE": filepath.Join(dir, "nope")}, "PUSHGATE_API_KEY_FILE: cannot open the file it names: no such file"},
		{"empty", nil, map[string]string{"PUSHGATE_RELAY_SECRET_FILE": write("empty", " \n")}, "PUSHGATE_RELAY_SECRET_FILE: the file it names is empty"},
		{"unreadable", nil, map[string]string{"PUSHGATE_REDIS_PASSWORD_FILE": dir}, "PUSHGATE_REDIS_PASSWORD_FILE: cannot read the file it names"},
		// A secret given where its file's name belongs is not echoed.
		{"a secret for a name", nil, map[string]string{"PUSHGATE_SECRET_FILE": "hunter2-hunter2-hunter2-hunter2"}, "PUSHGATE_SECRET_FILE: cannot open the file it names"},
		{"too short", nil, map[string]string{"PUSHGATE_SECRET_FILE": write("short", "short\n")}, "-secret must be at least 16 bytes"},
	} {
		_, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %v, want an error with %q, quoting no path or secret", tc.name, err, tc.want)
		}
	}

	// Every secret flag has its file variable, and -h says so.
	var usage strings.Builder
	parseConfig([]string{"-h"}, func(string) string { return "" }, &usage)
	for _, name := range secretFlags {
		p := write("s-"+name, "x")
		_, err := parseConfig([]string{"-" + name, "x"}, func(k string) string { return map[string]string{fileEnvName(name): p}[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), fileEnvName(name)) {
			t.Errorf("-%s with %s: %v, want it refused", name, fileEnvName(name), err)
		}
		if !strings.Contains(usage.String(), "-"+name) {
			t.Errorf("-h does not list -%s", name)
		}
	}
}

// TestRedisSettings: the three shapes of -redis-url, -redis-password
// beside a URL without one, and settings that cannot work refused at start
// with an example, never quoting a password.
func TestRedisSettings(t *testing.T) {
	base := []string{"-secret", "a-test-secret-of-32-bytes-length", "-upstream", "http://up", "-api-key", "k", "-flow-id", "f"}
	for _, ok := range [][]string{
		{"-redis-url", "redis://cache:6379/2", "-redis-password", "p@ss/word"},
		{"-redis-url", "rediss://cache:6380/0"},
		{"-redis-url", "redis://s1:26379/0?master_name=mymaster&addr=s2:26379&addr=s3:26379", "-redis-password", "hunter2-hunter2"},
		{"-redis-url", "redis://n1:6379?addr=n2:6379&addr=n3:6379", "-redis-cluster"},
		{"-redis-url", "rediss://n1:6379?addr=n2:6379", "-redis-cluster", "-redis-tls-server-name", "redis.internal"},
	} {
		c, err := parseConfig(append(base, ok...), func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Errorf("%q: %v", ok, err)
			continue
		}
		if slices.Contains(ok, "-redis-password") && c.gw.Redis.Password == "" {
			t.Errorf("%q: the password was not kept", ok)
		}
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-redis-password", "hunter2-hunter2"}, "need -redis-url"},
		{[]string{"-redis-url", "redis://:other-hunter2@cache:6379", "-redis-password", "hunter2-hunter2"}, "give it one way"},
		{[]string{"-redis-url", "redis://s1:26379/0?master_name=m&addr=s2:26379&password=other-hunter2", "-redis-password", "hunter2-hunter2"}, "give it one way"},
		{[]string{"-redis-url", "http://cache:6379"}, "want a redis:// or rediss:// URL"},
		{[]string{"-redis-url", "redis://n1:6379?addr=n2:6379&addr=n3:6379"}, "master_name=mymaster"},         // several, no shape
		{[]string{"-redis-url", "redis://s1:26379?master_name=mymaster", "-redis-cluster"}, "-redis-cluster"}, // mixed
		{[]string{"-redis-url", "redis://s1:26379/0"}, "port 26379 is Sentinel's"},                            // a sentinel without its master
		{[]string{"-redis-url", "redis://s1:26379?master_name=&addr=s2:26379"}, "master_name is empty"},       // no master name
		{[]string{"-redis-url", "redis://cache:6379", "-redis-ca", notPEM}, "need a rediss:// URL"},           // TLS files without TLS
		{[]string{"-redis-url", "rediss://cache:6379", "-redis-ca", notPEM}, "holds no PEM certificate"},      // not PEM
		{[]string{"-redis-url", "rediss://cache:6379", "-redis-cert", notPEM}, "-redis-cert and -redis-key go together"},
	} {
		_, err := parseConfig(append(base, tc.args...), func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: %v, want an error with %q that quotes no password", tc.args, err, tc.want)
		}
	}
}

func TestTLSFlags(t *testing.T) {
	c, err := parseConfig([]string{"-tls-cert", "c.pem", "-tls-key", "k.pem"}, func(string) string { return "" }, io.Discard)
	if err != nil || c.gw.TLS.CertFile != "c.pem" || c.gw.TLS.KeyFile != "k.pem" || c.gw.TLS.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS flags: %+v, %v; want the files and TLS 1.2 at least", c.gw.TLS, err)
	}
	if c, err := parseConfig([]string{"-tls-min-version", "1.3"}, func(string) string { return "" }, io.Discard); err != nil || c.gw.TLS.MinVersion != tls.VersionTLS13 {
		t.Errorf("-tls-min-version 1.3: %v, %v", c.gw.TLS.MinVersion, err)
	}
	for _, bad := range [][]string{{"-tls-cert", "c.pem"}, {"-tls-key", "k.pem"}, {"-tls-min-version", "1.1"}} {
		if _, err := parseConfig(bad, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
