package main

import (
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"strings"
)

// Secrets read from files: Docker and Kubernetes secrets, systemd credentials.

// secretFlags are the flags that also read their value from a file, named
// by the environment variable PUSHGATE_<NAME>_FILE (Docker and Kubernetes
// secrets, systemd credentials), so a secret needs to be in no process's
// arguments or environment.
var secretFlags = []string{
	"secret", "previous-secret", "api-key", "admin-token", "admin-password", "api-token",
	"webhook-secret", "webhook-client-secret", "webhook-header", "relay-secret",
	"redis-url", "redis-password", "sim-control-token",
}

// fileEnvName is the environment variable naming the file a secret flag
// reads from.
func fileEnvName(flagName string) string { return envName(flagName) + "_FILE" }

// setFromFile sets the flag name from the file its PUSHGATE_<NAME>_FILE
// names, if set: read once, surrounding whitespace trimmed; the lines of a
// file of several values (API tokens, relay secrets) are its items. A
// file given beside the value itself (set tells), or one that is missing,
// unreadable or empty, is an error naming the variable.
func setFromFile(fs *flag.FlagSet, name string, set bool, getenv func(string) string) error {
	v := fileEnvName(name)
	path := getenv(v)
	if path == "" {
		return nil
	}
	if set {
		return fmt.Errorf("%s and -%s (or %s) are both set: give the secret one way", v, name, envName(name))
	}
	// Errors name the variable, not the path: a secret set by mistake
	// where its file's name belongs must not reach the log.
	b, err := os.ReadFile(path)
	if pe := (*iofs.PathError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("%s: cannot %s the file it names: %w", v, pe.Op, pe.Err)
	} else if err != nil {
		return fmt.Errorf("%s: %w", v, err)
	}
	value := strings.TrimSpace(string(b))
	if value == "" {
		return fmt.Errorf("%s: the file it names is empty", v)
	}
	if f := fs.Lookup(name); f != nil {
		if _, list := f.Value.(*listFlag); list || name == "api-token" {
			value = strings.Join(strings.Fields(value), ",")
		}
	}
	if err := fs.Set(name, value); err != nil {
		return fmt.Errorf("%s: %w", v, err)
	}
	return nil
}
