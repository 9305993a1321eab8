package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TLSConfig serves the gateway's listener over HTTPS, with HTTP/2.
type TLSConfig struct {
	// CertFile and KeyFile are the PEM files of the certificate chain and
	// its private key. Both empty serve plain HTTP (behind a proxy that
	// ends TLS); one without the other is refused.
	CertFile, KeyFile string
	// MinVersion is the oldest TLS version served. Zero means TLS 1.2.
	MinVersion uint16
	// ReloadEvery is how often the files are checked for a change (a
	// renewal: cert-manager rewrites them in place); a changed pair is
	// loaded for the handshakes that follow, and open connections keep
	// theirs. Zero means 5s.
	ReloadEvery time.Duration
}

// pemFiles are the contents of the certificate and key files.
type pemFiles struct{ cert, key []byte }

// certReloader holds the certificate the listener hands out, and reloads
// it when its files change. A pair that fails to load (half written,
// mismatched) is logged and the one in use kept.
type certReloader struct {
	cfg     TLSConfig
	log     *slog.Logger
	cert    atomic.Pointer[tls.Certificate]
	metrics *tlsMetrics
	stop    chan struct{}
	done    sync.WaitGroup // the watch goroutine

	// Only watch reads and writes these after start.
	seen    pemFiles // the files as last loaded or tried
	readErr string   // the last error reading them, logged once
}

// newCertReloader loads the pair, refusing one that does not load, and
// starts watching its files.
func newCertReloader(cfg TLSConfig, reg prometheus.Registerer, log *slog.Logger) (*certReloader, error) {
	if cfg.ReloadEvery <= 0 {
		cfg.ReloadEvery = 5 * time.Second
	}
	r := &certReloader{cfg: cfg, log: log, stop: make(chan struct{})}
	var err error
	if r.seen, err = r.read(); err != nil {
		return nil, fmt.Errorf("gateway: TLS certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	cert, err := load(r.seen)
	if err != nil {
		return nil, fmt.Errorf("gateway: TLS certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	r.cert.Store(cert)
	if r.metrics, err = newTLSMetrics(reg, r); err != nil {
		return nil, err
	}
	r.done.Add(1)
	go r.watch()
	return r, nil
}

// read reads both files.
func (r *certReloader) read() (pemFiles, error) {
	cert, err := os.ReadFile(r.cfg.CertFile)
	if err != nil {
		return pemFiles{}, err
	}
	key, err := os.ReadFile(r.cfg.KeyFile)
	return pemFiles{cert, key}, err
}

// load parses and checks a pair: the key must match the certificate.
func load(f pemFiles) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil { // LoadX509KeyPair fills it; be sure of it
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

// watch checks the files every ReloadEvery until close.
func (r *certReloader) watch() {
	defer r.done.Done()
	t := time.NewTicker(r.cfg.ReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.check()
		}
	}
}

// check loads the pair again when a file's contents changed since the
// last try (whatever its modification time says: a copy may keep the old
// one). A pair caught between its two writes fails and is tried again
// once the second write changes it; files that cannot be read (a
// renewal's rename under way) are tried again at the next check.
func (r *certReloader) check() {
	now, err := r.read()
	if err != nil {
		if err.Error() != r.readErr {
			r.readErr = err.Error()
			r.log.Warn("TLS certificate files cannot be read; keeping the certificate in use", "err", err)
		}
		return
	}
	r.readErr = ""
	if bytes.Equal(now.cert, r.seen.cert) && bytes.Equal(now.key, r.seen.key) {
		return
	}
	r.seen = now
	cert, err := load(now)
	if err != nil {
		r.metrics.reload("failed")
		r.log.Warn("TLS certificate changed but does not load; keeping the one in use", "cert", r.cfg.CertFile, "key", r.cfg.KeyFile, "err", err,
			"in_use_not_after", r.cert.Load().Leaf.NotAfter)
		return
	}
	r.cert.Store(cert)
	r.metrics.reload("ok")
	r.log.Info("TLS certificate reloaded", "cert", r.cfg.CertFile, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
}

func (r *certReloader) close() {
	close(r.stop)
	r.done.Wait()
}

// serverConfig is the listener's TLS config: the certificate in use at
// each handshake, HTTP/2 first.
func (r *certReloader) serverConfig() *tls.Config {
	minVersion := r.cfg.MinVersion
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	return &tls.Config{
		MinVersion: minVersion,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}

// selfConfig is the TLS config of calls this process makes to its own
// listener over loopback (the built-in simulator's webhooks): the
// certificate's names need not cover the loopback address, so the peer
// must present exactly the certificate in use.
func (r *certReloader) selfConfig() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by VerifyConnection's pinning
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 && cs.PeerCertificates[0].Equal(r.cert.Load().Leaf) {
				return nil
			}
			return errors.New("gateway: the loopback peer does not present this gateway's certificate")
		},
	}
}

// check refuses half a pair.
func (c TLSConfig) check() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("gateway: TLS needs both a certificate file and a key file")
	}
	return nil
}

// tlsMetrics are the certificate's collectors; nil records nothing.
type tlsMetrics struct {
	reloads    *prometheus.CounterVec
	handshakes prometheus.Counter // failed
}

func newTLSMetrics(reg prometheus.Registerer, r *certReloader) (*tlsMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &tlsMetrics{reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pushgate_tls_reloads_total",
		Help: "Loads of a changed TLS certificate and key, by result: ok (served from the next handshake on), failed (the pair in use kept; see the log).",
	}, []string{"result"}),
		handshakes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_tls_handshake_errors_total",
			Help: "TLS handshakes that failed on the gateway's listener: a load balancer's TCP check, a scanner, a client that gave up or offered no common version or cipher (logged at debug).",
		})}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pushgate_tls_certificate_expiry_timestamp_seconds",
		Help: "When the TLS certificate in use expires (its NotAfter), in seconds since the Unix epoch.",
	}, func() float64 { return float64(r.cert.Load().Leaf.NotAfter.Unix()) })
	for _, c := range []prometheus.Collector{m.reloads, m.handshakes, expiry} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *tlsMetrics) handshakeFailed() {
	if m != nil {
		m.handshakes.Inc()
	}
}

func (m *tlsMetrics) reload(result string) {
	if m != nil {
		m.reloads.WithLabelValues(result).Inc()
	}
}
