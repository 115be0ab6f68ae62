package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Dev is the development TLS PKI in an archive's pki/ directory: a P-256 root and the
// server and client certificates it issued.
type Dev struct {
	Root, ServerCert, ServerKey, ClientCert, ClientKey string // file paths
	Hosts                                              []string
}

// DevFiles names the files of the development TLS PKI in dir.
func DevFiles(dir string) Dev {
	return Dev{
		Root:       filepath.Join(dir, "tls-root.pem"),
		ServerCert: filepath.Join(dir, "tls-server.pem"), ServerKey: filepath.Join(dir, "tls-server.key"),
		ClientCert: filepath.Join(dir, "tls-client.pem"), ClientKey: filepath.Join(dir, "tls-client.key"),
	}
}

// EnsureDev makes what is missing of the development TLS PKI in dir: the root (valid 20
// years), a server certificate for hosts (names and IP addresses; two years; made again
// when hosts are given and differ from the current one's), and a client certificate naming
// the archive (two years), which another archive can require (mutual TLS).
func EnsureDev(dir, archiveName string, hosts []string) (Dev, error) {
	d := DevFiles(dir)
	rootKeyPath := filepath.Join(dir, "tls-root.key")
	now := time.Now()
	var root *x509.Certificate
	var rootKey *ecdsa.PrivateKey
	if _, err := os.Stat(d.Root); errors.Is(err, os.ErrNotExist) {
		key, der, err := makeCert(&x509.Certificate{
			Subject:   pkix.Name{CommonName: archiveName + " TLS 根证书 (development)", Organization: []string{archiveName}, Country: []string{"CN"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(20, 0, 0),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}, nil, nil)
		if err != nil {
			return d, err
		}
		if err := writePair(d.Root, rootKeyPath, der, key); err != nil {
			return d, err
		}
	}
	root, rootKey, err := readPair(d.Root, rootKeyPath)
	if err != nil {
		return d, fmt.Errorf("the development TLS root: %w", err)
	}
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if cur, err := readCert(d.ServerCert); err != nil || !sameHosts(cur, hosts) {
		t := &x509.Certificate{
			Subject:   pkix.Name{CommonName: hosts[0], Organization: []string{archiveName}, Country: []string{"CN"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				t.IPAddresses = append(t.IPAddresses, ip)
			} else {
				t.DNSNames = append(t.DNSNames, h)
			}
		}
		key, der, err := makeCert(t, root, rootKey)
		if err != nil {
			return d, err
		}
		if err := writePair(d.ServerCert, d.ServerKey, der, key); err != nil {
			return d, err
		}
	}
	if _, err := os.Stat(d.ClientCert); errors.Is(err, os.ErrNotExist) {
		key, der, err := makeCert(&x509.Certificate{
			Subject:   pkix.Name{CommonName: archiveName, Organization: []string{archiveName}, Country: []string{"CN"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, root, rootKey)
		if err != nil {
			return d, err
		}
		if err := writePair(d.ClientCert, d.ClientKey, der, key); err != nil {
			return d, err
		}
	}
	d.Hosts = hosts
	return d, nil
}

// HasDev reports whether dir holds a development TLS root.
func HasDev(dir string) bool {
	_, err := os.Stat(DevFiles(dir).Root)
	return err == nil
}

func sameHosts(c *x509.Certificate, hosts []string) bool {
	var have []string
	have = append(have, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		have = append(have, ip.String())
	}
	if len(have) != len(hosts) {
		return false
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		if !slices.ContainsFunc(have, func(x string) bool { return strings.EqualFold(x, h) }) {
			return false
		}
	}
	return true
}

func makeCert(t *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS key: %w", err)
	}
	if t.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, err
	}
	signer := key
	if parent == nil {
		parent = t
	} else {
		signer = parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, t, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("issue TLS certificate %q: %w", t.Subject.CommonName, err)
	}
	return key, der, nil
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: %w", path, ErrNoCertificate)
	}
	return x509.ParseCertificate(block.Bytes)
}

func readPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	c, err := readCert(certPath)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not an ECDSA key", keyPath)
	}
	return c, ek, nil
}
