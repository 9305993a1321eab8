package main

import (
	"io"
	"strings"
	"testing"
)

// TestWeakWebhookSecretsRefused: a webhook secret of fewer than 32 bytes,
// short enough to guess, stops pushgate at start with a message naming
// the flag, from the command line or the environment.
func TestWeakWebhookSecretsRefused(t *testing.T) {
	secret32 := strings.Repeat("s", 32)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		flag string // named in the error; "" when taken
	}{
		{args: []string{"-webhook-secret", "a"}, flag: "-webhook-secret"},
		{args: []string{"-webhook-secret", secret32[:31]}, flag: "-webhook-secret"},
		{env: map[string]string{"PUSHGATE_WEBHOOK_SECRET": "short"}, flag: "-webhook-secret"},
		{args: []string{"-webhook-client-id", "X", "-webhook-client-secret", "Y"}, flag: "-webhook-client-secret"},
		{env: map[string]string{"PUSHGATE_WEBHOOK_CLIENT_ID": "X", "PUSHGATE_WEBHOOK_CLIENT_SECRET": "Y"}, flag: "-webhook-client-secret"},
		{args: []string{"-webhook-header", "X-Hook: " + secret32[:31]}, flag: "-webhook-header"},
		{args: []string{"-webhook-secret", secret32}},
		{args: []string{"-webhook-client-id", "X", "-webhook-client-secret", secret32}},
		{args: []string{"-webhook-header", "X-Hook: " + secret32}},
	} {
		_, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		switch {
		case tc.flag == "" && err != nil:
			t.Errorf("%q %v: %v, want it taken", tc.args, tc.env, err)
		case tc.flag != "" && (err == nil || !strings.Contains(err.Error(), tc.flag) || !strings.Contains(err.Error(), "at least 32 bytes")):
			t.Errorf("%q %v: %v, want an error naming %s and its 32 bytes", tc.args, tc.env, err, tc.flag)
		}
	}
}
