package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TLSServer is a redis-server that speaks only TLS, with the files a
// client needs. Its URL is rediss://; Do speaks TLS with the client
// certificate.
type TLSServer struct {
	*Server

	CAFile      string // PEM: the CA that signed the server's and the client's certificates
	CertFile    string // PEM: the client's certificate
	KeyFile     string // PEM: the client's key
	OtherCAFile string // PEM: a CA that signed nothing here, for clients that must fail
}

// ServerName is the DNS name in the server's certificate, beside the IP
// address 127.0.0.1.
const ServerName = "redis.test"

// StartTLS starts a redis-server listening only on a TLS port, with a
// certificate for 127.0.0.1 and ServerName signed by a fresh CA. With
// clientCerts it refuses clients without a certificate signed by that CA.
func StartTLS(t testing.TB, clientCerts bool) *TLSServer {
	t.Helper()
	path := binary(t, "redis-server", "redis-server", "the Redis TLS test")
	dir := t.TempDir()
	ts := &TLSServer{
		CAFile:      filepath.Join(dir, "ca.pem"),
		CertFile:    filepath.Join(dir, "client.pem"),
		KeyFile:     filepath.Join(dir, "client-key.pem"),
		OtherCAFile: filepath.Join(dir, "other-ca.pem"),
	}
	ca, caKey := newCA(t, "pushgate test CA", ts.CAFile)
	newCA(t, "pushgate unrelated CA", ts.OtherCAFile)
	serverCert, serverKey := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: ServerName},
		DNSNames:    []string{ServerName},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, serverCert, serverKey)
	issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "pushgate test client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ts.CertFile, ts.KeyFile)

	auth := "no"
	if clientCerts {
		auth = "yes"
	}
	port := freePorts(t, 1, false)[0]
	conf := dataConf + fmt.Sprintf("tls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients %s\n",
		port, serverCert, serverKey, ts.CAFile, auth)
	// "port 0" overrides the plain port newConfServer sets: TLS only.
	ts.Server = newConfServer(t, "redis-server (TLS)", path, port, conf+"port 0\n")
	ts.tls = ts.clientConfig(t)
	t.Cleanup(ts.Stop)
	if err := ts.start(); err != nil {
		if tlsMissing(ts.log.String()) {
			unavailable(t, "redis-server is built without TLS (redis-server --tls-port fails)", "the Redis TLS test")
		}
		t.Fatal(err)
	}
	logOnFailure(t, ts.Server)
	return ts
}

// clientConfig trusts CAFile and presents the client certificate.
func (ts *TLSServer) clientConfig(t testing.TB) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pemCA, err := os.ReadFile(ts.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(pemCA) {
		t.Fatalf("redistest: reading %s: %v", ts.CAFile, err)
	}
	cert, err := tls.LoadX509KeyPair(ts.CertFile, ts.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// newCA writes a self-signed CA certificate (ECDSA P-256) to file.
func newCA(t testing.TB, name, file string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, file, "CERTIFICATE", der)
	return cert, key
}

// issue completes tmpl, signs it with the CA and writes the certificate
// and its new key (PKCS #8) as PEM.
func issue(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsMissing reports whether a server's output says it was built without
// TLS.
func tlsMissing(log string) bool {
	return strings.Contains(log, "Bad directive") || strings.Contains(log, "TLS is not supported")
}
