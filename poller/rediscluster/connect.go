package rediscluster

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Address names the Redis the nodes of a cluster share, in one of three
// shapes, each taken by go-redis's own client for it:
//
//   - one server: redis://[user:password@]host:port[/db], or rediss://
//     for TLS (redis.NewClient);
//   - Sentinel: the sentinels' addresses and the master's name, as
//     go-redis's failover URL,
//     redis://S1:26379[/db]?master_name=mymaster&addr=S2:26379&addr=S3:26379
//     (redis.NewFailoverClient: it asks the sentinels for the master, and
//     again after a failover);
//   - Redis Cluster, with Cluster set: seed nodes as go-redis's cluster
//     URL, redis://N1:6379?addr=N2:6379&addr=N3:6379
//     (redis.NewClusterClient: it follows MOVED and ASK, and the slots'
//     new masters after a failover).
type Address struct {
	URL     string
	Cluster bool
	TLS     TLSFiles
	// Password is the servers' password (AUTH), when the URL carries
	// none: the master's and replicas' with Sentinel (the sentinels' own
	// goes in the URL), every node's of a Cluster.
	Password string
}

// errTwoPasswords refuses a password given both ways.
var errTwoPasswords = errors.New("-redis-password: the Redis URL carries a password already; give it one way")

// TLSFiles set up TLS beyond an rediss:// URL's defaults (the system's
// roots, the host's name). Each is optional; any of them needs rediss://.
type TLSFiles struct {
	CA         string // PEM file of the CA the servers' certificates are checked against
	Cert, Key  string // PEM files of a client certificate, for servers that ask for one
	ServerName string // the name the servers' certificates must carry, when it is not the host's
}

// Address examples, for the errors that refuse a URL.
const (
	exampleSingle   = "redis://10.0.0.5:6379/0"
	exampleSentinel = "redis://10.0.0.11:26379/0?master_name=mymaster&addr=10.0.0.12:26379&addr=10.0.0.13:26379"
	exampleCluster  = "redis://10.0.0.21:6379?addr=10.0.0.22:6379&addr=10.0.0.23:6379 with -redis-cluster"
)

// Shape says which of the three shapes a names: "server", "sentinel" or
// "cluster". An address that mixes them, or that names a sentinel without
// its master, is refused with examples of each.
func (a Address) Shape() (string, error) {
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return "", fmt.Errorf("want a redis:// or rediss:// URL, e.g. %s", exampleSingle)
	}
	q := u.Query()
	master, several := q.Has("master_name"), q.Has("addr")
	switch {
	case a.Cluster && master:
		return "", fmt.Errorf("a Redis Cluster has no master_name (that names a Sentinel's master): want %s, or for Sentinel %s without -redis-cluster", exampleCluster, exampleSentinel)
	case a.Cluster:
		return "cluster", nil
	case master && q.Get("master_name") == "":
		return "", fmt.Errorf("master_name is empty: want %s", exampleSentinel)
	case master:
		return "sentinel", nil
	case several:
		return "", fmt.Errorf("several addresses but neither a Sentinel's master_name nor -redis-cluster: for Sentinel want %s; for a Redis Cluster %s", exampleSentinel, exampleCluster)
	case u.Port() == "26379":
		return "", fmt.Errorf("port 26379 is Sentinel's: name its master, e.g. %s, or give the server's own address", exampleSentinel)
	}
	return "server", nil
}

// NewClient returns a client of the Redis a names, in its shape. Dials,
// reads and writes are cut at timeout; a failed command is tried again
// retries times (-1: never) on a new connection, after the client has
// looked up where to send it (a Sentinel's new master, a slot's); no
// CLIENT SETINFO or MAINT_NOTIFICATIONS handshake, which older servers
// and some managed offerings refuse. Errors never quote the URL: it may
// hold a password.
func (a Address) NewClient(timeout time.Duration, retries int) (redis.UniversalClient, error) {
	shape, err := a.Shape()
	if err != nil {
		return nil, err
	}
	tlsConfig, err := a.tlsConfig()
	if err != nil {
		return nil, err
	}
	u, err := a.universal(shape)
	if err != nil {
		return nil, err
	}
	u.DialTimeout, u.ReadTimeout, u.WriteTimeout, u.ContextTimeoutEnabled = timeout, timeout, timeout, true
	u.MaxRetries, u.DisableIdentity = retries, true
	u.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	u.TLSConfig = mergeTLS(u.TLSConfig, tlsConfig)
	if u.TLSConfig != nil && shape != "server" && a.TLS.ServerName == "" {
		// go-redis names the first host for every connection; each node
		// or sentinel must be checked against its own.
		u.TLSConfig = u.TLSConfig.Clone()
		u.TLSConfig.ServerName = ""
	}
	if u.Password, err = a.password(u.Password); err != nil {
		return nil, err
	}
	switch shape {
	case "cluster":
		o := u.Cluster()
		// A killed master answers no MOVED: without a reload the client
		// would send its slots' commands to it until the next one (60 s
		// by default), long after the Cluster promoted its replica.
		o.ClusterStateReloadInterval = time.Second
		return redis.NewClusterClient(o), nil
	case "sentinel":
		return redis.NewFailoverClient(u.Failover()), nil
	}
	return redis.NewClient(u.Simple()), nil
}

// universal reads the URL of a shape into go-redis's options for any
// shape: the addresses, the database, the credentials (the sentinels'
// apart), the master's name, TLS, the protocol and the client's name. The
// URL's tuning options (timeouts, pool sizes) are not taken: NewClient
// sets those.
func (a Address) universal(shape string) (*redis.UniversalOptions, error) {
	switch shape {
	case "cluster":
		o, err := redis.ParseClusterURL(a.URL)
		if err != nil {
			return nil, errors.New("cannot read the Redis Cluster URL: want " + exampleCluster)
		}
		return &redis.UniversalOptions{Addrs: o.Addrs, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
			Protocol: o.Protocol, ClientName: o.ClientName}, nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(a.URL)
		if err != nil {
			return nil, errors.New("cannot read the Sentinel URL: want " + exampleSentinel)
		}
		return &redis.UniversalOptions{Addrs: o.SentinelAddrs, MasterName: o.MasterName, DB: o.DB, Username: o.Username, Password: o.Password,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword, TLSConfig: o.TLSConfig,
			Protocol: o.Protocol, ClientName: o.ClientName}, nil
	}
	o, err := redis.ParseURL(a.URL)
	if err != nil {
		return nil, errors.New("cannot read the Redis URL: want " + exampleSingle)
	}
	return &redis.UniversalOptions{Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		Protocol: o.Protocol, ClientName: o.ClientName}, nil
}

// password is the servers' password: the URL's, or Password.
func (a Address) password(fromURL string) (string, error) {
	if a.Password != "" && fromURL != "" {
		return "", errTwoPasswords
	}
	return cmp.Or(fromURL, a.Password), nil
}

// tlsConfig reads the TLS files; nil when none is given.
func (a Address) tlsConfig() (*tls.Config, error) {
	f := a.TLS
	if f == (TLSFiles{}) {
		return nil, nil
	}
	if !strings.HasPrefix(a.URL, "rediss://") {
		return nil, errors.New("-redis-ca, -redis-cert, -redis-key and -redis-tls-server-name need a rediss:// URL (TLS)")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("-redis-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-redis-ca %s holds no PEM certificate", f.CA)
		}
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("-redis-cert and -redis-key go together")
	}
	if f.Cert != "" {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("-redis-cert and -redis-key: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// mergeTLS lays ours over the config go-redis made of an rediss:// URL
// (its ServerName, the host's): nil for a redis:// URL.
func mergeTLS(fromURL, ours *tls.Config) *tls.Config {
	if fromURL == nil || ours == nil {
		return fromURL
	}
	if ours.ServerName == "" {
		ours.ServerName = fromURL.ServerName
	}
	return ours
}

// tlsProblem tells a TLS handshake that failed for good (a certificate
// that does not verify, or a client certificate the server refused) from
// one that may pass later, and says which part is wrong. ok is false for
// any other error.
func tlsProblem(err error) (why string, ok bool) {
	if err == nil {
		return "", false
	}
	var unknown x509.UnknownAuthorityError
	var name x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		return "the server's certificate is not signed by a CA pushgate trusts: give its CA with -redis-ca (the system's roots are used without it)", true
	case errors.As(err, &name):
		return "the server's certificate does not name the host pushgate dials (" + name.Host + "): set -redis-tls-server-name to a name it carries", true
	case errors.As(err, &invalid):
		return "the server's certificate is not valid: " + invalid.Error(), true
	case errors.As(err, &verify):
		return "the server's certificate does not verify: " + verify.Err.Error(), true
	case strings.Contains(err.Error(), "remote error: tls"):
		return "the server refused the TLS handshake (" + err.Error() + "): it wants a client certificate it trusts (-redis-cert, -redis-key), or has no TLS version or cipher in common", true
	case isPlainToTLS(err):
		return "the server does not speak TLS here: use redis:// for it, or its TLS port", true
	}
	return "", false
}

// isPlainToTLS reports a TLS handshake answered by a server that does not
// speak TLS.
func isPlainToTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh)
}

// errShape marks a Redis whose shape -redis-url does not match.
var errShape = errors.New("rediscluster: Redis")

// checkShape refuses a Redis Cluster named as one server or Sentinel, and
// one server named as a Redis Cluster: every command would fail (MOVED,
// or cluster support disabled) while the node looked healthy. pinged is
// the answer to the first PING. Redis out of reach, or an INFO the
// server's ACL refuses, tells nothing: nil.
func (n *Node) checkShape(ctx context.Context, pinged error) error {
	if pinged != nil && strings.Contains(pinged.Error(), "cluster support disabled") {
		return fmt.Errorf("%w: -redis-cluster, but the server is not a Redis Cluster node: leave -redis-cluster out (one server: %s; Sentinel: %s)", errShape, exampleSingle, exampleSentinel)
	}
	if pinged != nil || n.cfg.Cluster {
		return nil
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	info, err := n.rdb.Info(ctx, "cluster").Result()
	if err == nil && infoField(info, "cluster_enabled") == "1" {
		return fmt.Errorf("%w: the server is a Redis Cluster node: add -redis-cluster, with seed nodes, e.g. %s", errShape, exampleCluster)
	}
	return nil
}
