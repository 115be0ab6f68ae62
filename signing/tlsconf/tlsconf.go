// Package tlsconf is how dangan speaks TLS: the server configuration of every listener
// (TLS 1.2 and later, forward-secret AEAD suites, HTTP/2), a certificate that is read again
// on SIGHUP, client certificates for mutual TLS between archives, and the client
// configuration an archive uses to reach another one, trusting only the root it was given.
//
// Go's TLS stack does not speak SM2 certificates (GB/T 38636 TLCP is another protocol), so
// the development PKI has a second, ECDSA P-256 root for TLS beside its SM2 root for
// signatures: pki/tls-root.pem, which issues the server certificate (tls-server.pem) and
// the client certificate an archive presents to the county archive (tls-client.pem).
package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// ErrNoCertificate is a file that holds no usable certificate or key.
var ErrNoCertificate = errors.New("tls: no usable certificate")

// Reloader serves a certificate and key from PEM files and reads them again on Reload,
// so that a renewed certificate is taken without a restart. A failed reload keeps the
// certificate already loaded.
type Reloader struct {
	certPath, keyPath string
	cur               atomic.Pointer[tls.Certificate]
}

// NewReloader loads the certificate and key once; an error names the file.
func NewReloader(certPath, keyPath string) (*Reloader, error) {
	r := &Reloader{certPath: certPath, keyPath: keyPath}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again.
func (r *Reloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certPath, r.keyPath)
	if err != nil {
		return fmt.Errorf("TLS certificate %s with key %s: %w", r.certPath, r.keyPath, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	r.cur.Store(&c)
	return nil
}

// Leaf is the certificate now served.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().Leaf }

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// suites are TLS 1.2's forward-secret AEAD suites (TLS 1.3 chooses its own, all of them AEAD).
var suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ClientAuth says whether a listener asks for client certificates.
type ClientAuth string

const (
	ClientAuthNone     ClientAuth = "none"     // no client certificates
	ClientAuthOptional ClientAuth = "optional" // verified when presented: a bad one fails the handshake
	ClientAuthRequire  ClientAuth = "require"  // a valid one or no connection
)

// ParseClientAuth reads a --tls-client-auth value.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch c := ClientAuth(s); c {
	case ClientAuthNone, ClientAuthOptional, ClientAuthRequire:
		return c, nil
	case "":
		return ClientAuthNone, nil
	}
	return "", fmt.Errorf("--tls-client-auth %q: none, optional or require", s)
}

// Server is the configuration of a TLS listener: TLS 1.2 or later, HTTP/2 offered, and
// client certificates verified against clientCAs as auth says.
func Server(cert *Reloader, auth ClientAuth, clientCAs *x509.CertPool) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   suites,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: cert.GetCertificate,
	}
	switch auth {
	case ClientAuthNone, "":
	case ClientAuthOptional, ClientAuthRequire:
		if clientCAs == nil {
			return nil, errors.New("client certificates need roots to verify them against")
		}
		c.ClientCAs = clientCAs
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if auth == ClientAuthRequire {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	default:
		return nil, fmt.Errorf("client auth %q: none, optional or require", auth)
	}
	return c, nil
}

// Client is the configuration for reaching another archive: its server certificate must
// chain to one of roots (the system's roots are not consulted), and cert, when given, is
// presented as this archive's client certificate.
func Client(roots *x509.CertPool, cert *Reloader) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: suites, RootCAs: roots}
	if cert != nil {
		c.GetClientCertificate = cert.GetClientCertificate
	}
	return c
}

// LoadPool reads the certificates of PEM files into a pool. Certificates Go's TLS cannot use
// (SM2 ones, which the same files may hold for signatures) are left out; a file without any
// usable certificate is an error.
func LoadPool(paths ...string) (*x509.CertPool, int, error) {
	pool := x509.NewCertPool()
	n := 0
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, 0, err
		}
		found := 0
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil || c.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
				continue // SM2, which the file holds for signatures
			}
			pool.AddCert(c)
			found++
		}
		if found == 0 && len(paths) == 1 {
			return nil, 0, fmt.Errorf("%s: %w (PEM certificates with RSA or ECDSA keys)", path, ErrNoCertificate)
		}
		n += found
	}
	return pool, n, nil
}

// Pin is what a token bound to a client certificate remembers of it: the SHA-256 of its
// public key (SubjectPublicKeyInfo), so that a renewal with the same key keeps the binding.
func Pin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// PinOfFile is the Pin of the first certificate in a PEM file.
func PinOfFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pin, err := PinOfPEM(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return pin, nil
}

// PinOfPEM is the Pin of the first certificate in PEM data.
func PinOfPEM(data []byte) (string, error) {
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return "", err
			}
			return Pin(c), nil
		}
	}
	return "", ErrNoCertificate
}
