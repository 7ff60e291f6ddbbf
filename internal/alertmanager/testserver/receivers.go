package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"
)

// The receivers a test points Alertmanager at: HTTPS servers that record
// every request (standing in for ntfy and a webhook) and an SMTP server
// (smtp.go), all on 127.0.0.1 with a certificate of a throw-away CA. The
// rendered configuration has no tls_config: Alertmanager trusts the
// system's roots, so the test hands it the CA with SSL_CERT_FILE
// (CA.Env), as a cluster trusts a public CA.

// CA is a throw-away certificate authority and the one server
// certificate it signed, for 127.0.0.1 and localhost.
type CA struct {
	// CertFile is the CA certificate (PEM).
	CertFile string
	// Server is the TLS configuration of the receivers.
	Server *tls.Config
	// Pool trusts the CA.
	Pool *x509.CertPool
}

// NewCA creates a CA in dir.
func NewCA(dir string) (*CA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hl test receivers CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	ca := &CA{CertFile: filepath.Join(dir, "ca.pem"), Pool: x509.NewCertPool()}
	ca.Pool.AddCert(caCert)
	if err := os.WriteFile(ca.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return nil, err
	}
	ca.Server = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	}
	return ca, nil
}

// Env makes a process trust the CA (Go reads SSL_CERT_FILE for the
// system roots).
func (c *CA) Env() []string { return []string{"SSL_CERT_FILE=" + c.CertFile} }

// Request is one request an HTTPReceiver got.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// HTTPReceiver is an HTTPS server that answers 200 to every request and
// hands each to Requests.
type HTTPReceiver struct {
	URL      string
	Requests chan Request
	srv      *httptest.Server
}

// StartHTTPReceiver serves with ca's certificate.
func StartHTTPReceiver(ca *CA) *HTTPReceiver {
	r := &HTTPReceiver{Requests: make(chan Request, 64)}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case r.Requests <- Request{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body}:
		default: // a test that stopped reading
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}\n")
	}))
	r.srv.TLS = ca.Server.Clone()
	r.srv.StartTLS()
	r.URL = r.srv.URL
	return r
}

// Close stops the server.
func (r *HTTPReceiver) Close() { r.srv.Close() }
