package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pushgate/pushgate/poller/rediscluster"
	"github.com/pushgate/pushgate/relay"
)

// The checks of the flags that name other services: the relay's
// backends, the TLS files, Redis.

// finishRelay checks the relay's flags and fills its Config.
func (c *config) finishRelay() error {
	r := &c.gw.Relay
	r.URLs, r.Secrets, r.Kinds = c.relayURLs, c.relaySecrets, splitList(c.relayEvents)
	switch {
	case len(r.URLs) == 0 && len(r.Secrets) > 0:
		return errors.New("-relay-secret needs -relay-url: where to relay")
	case len(r.URLs) == 0:
		return nil
	case len(r.Secrets) == 0:
		return errors.New("-relay-url needs -relay-secret: every relayed event is signed (whsec_$(openssl rand -base64 32))")
	case len(r.Secrets) > 2:
		return errors.New("-relay-secret: at most two, the new and the old during a rotation")
	case len(r.Kinds) == 0:
		return errors.New("-relay-events: name one kind at least (upstream, status, ended)")
	}
	for _, u := range r.URLs {
		if err := relay.CheckURL(u); err != nil {
			return fmt.Errorf("-relay-url: %w", err)
		}
	}
	for _, s := range r.Secrets {
		if err := relay.CheckSecret(s); err != nil {
			return fmt.Errorf("-relay-secret: %w", err)
		}
	}
	for _, k := range r.Kinds {
		if !slices.Contains(relay.Kinds, k) {
			return fmt.Errorf("-relay-events: %q: want upstream, status or ended", k)
		}
	}
	if r.Timeout <= 0 || r.MaxAge <= 0 || r.BackoffMax <= 0 || r.MaxQueue <= 0 {
		return errors.New("-relay-timeout, -relay-max-age, -relay-backoff-max and -relay-max-queue must be positive")
	}
	return nil
}

// finishTLS checks the TLS flags and fills the gateway's TLS config.
func (c *config) finishTLS() error {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	switch c.tlsMinVersion {
	case "1.2":
		c.gw.TLS.MinVersion = tls.VersionTLS12
	case "1.3":
		c.gw.TLS.MinVersion = tls.VersionTLS13
	default:
		return fmt.Errorf("-tls-min-version %q: want 1.2 or 1.3", c.tlsMinVersion)
	}
	c.gw.TLS.CertFile, c.gw.TLS.KeyFile = c.tlsCert, c.tlsKey
	return nil
}

// checkRedis refuses Redis settings that cannot work, before anything
// starts: a URL that mixes shapes, TLS files without rediss://, a CA that
// is not PEM, a password given twice. Errors never quote the URL: it may
// hold credentials.
func (c *config) checkRedis() error {
	r := c.gw.Redis
	if r.URL == "" {
		if r.Password != "" || r.Cluster || r.TLS != (rediscluster.TLSFiles{}) {
			return errors.New("-redis-password, -redis-cluster and the -redis-ca, -redis-cert, -redis-key and -redis-tls-server-name flags need -redis-url")
		}
		return nil
	}
	client, err := r.Address().NewClient(time.Second, 0) // no dial: a client connects on its first command
	if err != nil {
		return fmt.Errorf("-redis-url: %w", err)
	}
	return client.Close()
}
