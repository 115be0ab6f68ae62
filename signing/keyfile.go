package signing

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/emmansun/gmsm/pkcs8"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// ErrNeedPassword is returned when an encrypted key is loaded without a password.
var ErrNeedPassword = errors.New("key is encrypted: a password is needed")

// MarshalKeyPEM encodes an SM2 private key as PKCS#8 PEM. With a non-empty password the key
// is encrypted (PBES2, SM4-CBC is used by gmsm's defaults) and the block is
// "ENCRYPTED PRIVATE KEY"; OpenSSL 3 reads both forms.
func MarshalKeyPEM(key *sm2.PrivateKey, password []byte) ([]byte, error) {
	der, err := pkcs8.MarshalPrivateKey(key, password, nil)
	if err != nil {
		return nil, fmt.Errorf("marshal PKCS#8: %w", err)
	}
	typ := "PRIVATE KEY"
	if len(password) > 0 {
		typ = "ENCRYPTED PRIVATE KEY"
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), nil
}

// ParseKeyPEM reads an SM2 private key from PKCS#8 PEM (plain or encrypted) or SEC1
// "EC PRIVATE KEY" PEM.
func ParseKeyPEM(data, password []byte) (*sm2.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		if len(password) == 0 {
			return nil, ErrNeedPassword
		}
		k, err := pkcs8.ParsePKCS8PrivateKeySM2(block.Bytes, password)
		if err != nil {
			return nil, fmt.Errorf("decrypt PKCS#8 SM2 key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := pkcs8.ParsePKCS8PrivateKeySM2(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8 SM2 key: %w", err)
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := smx509.ParseSM2PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse SEC1 SM2 key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("unexpected PEM block %q for a private key", block.Type)
}

// LoadKey reads a PEM key file.
func LoadKey(path string, password []byte) (*sm2.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	k, err := ParseKeyPEM(data, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// SaveKey writes a PEM key file with mode 0600, atomically.
func SaveKey(path string, key *sm2.PrivateKey, password []byte) error {
	data, err := MarshalKeyPEM(key, password)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, data, 0o600)
}

// CertPEM encodes certificates as PEM "CERTIFICATE" blocks.
func CertPEM(certs ...*smx509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// ParseCertsPEM reads every CERTIFICATE block in data.
func ParseCertsPEM(data []byte) ([]*smx509.Certificate, error) {
	var certs []*smx509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := smx509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE block found")
	}
	return certs, nil
}

// LoadCerts reads a PEM file of certificates.
func LoadCerts(path string) ([]*smx509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	certs, err := ParseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// WriteFileAtomic writes data to path through a temporary file and a rename, fsynced.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}

// LoadAnchors reads trust anchors from a PEM bundle, or from every .pem, .crt and .cer
// file (PEM or DER) of a directory. A file that holds no certificate is an error, so a
// misplaced file is not silently ignored.
func LoadAnchors(path string) ([]*smx509.Certificate, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	if !st.IsDir() {
		return LoadCerts(path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	var out []*smx509.Certificate
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".pem" && ext != ".crt" && ext != ".cer") {
			continue
		}
		p := filepath.Join(path, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("trust anchors: %w", err)
		}
		if certs, err := ParseCertsPEM(data); err == nil && len(certs) > 0 {
			out = append(out, certs...)
			continue
		}
		c, _, err := ParseCertificateLenient(data)
		if err != nil {
			return nil, fmt.Errorf("trust anchor %s is neither PEM nor DER certificates: %w", p, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trust anchors: %s holds no .pem, .crt or .cer certificate", path)
	}
	return out, nil
}
