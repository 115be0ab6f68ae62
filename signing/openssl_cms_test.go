package signing

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// CMS signatures made by OpenSSL 3 (`openssl cms -sign`, detached, DER) with each key type
// a foreign signer uses: dangan verifies them over the content, and refuses them over
// changed content. (OpenSSL 3.0's CMS cannot sign with EdDSA; Ed25519 and Ed448 are
// tested in TestVerifyMessageAlgorithms.)
func TestVerifiesCMSMadeByOpenSSL(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	content := []byte("a receipt signed by a bank, 某银行电子回单")
	os.WriteFile(data, content, 0o644)
	for _, tc := range []struct {
		name    string
		newkey  []string
		signopt []string
		alg     string
	}{
		{"RSA-2048", []string{"-newkey", "rsa:2048"}, nil, "RSA with SHA-256"},
		{"RSA-PSS", []string{"-newkey", "rsa:2048"}, []string{"-keyopt", "rsa_padding_mode:pss"}, "RSASSA-PSS with SHA-256"},
		{"ECDSA P-256", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}, nil, "ECDSA with SHA-256"},
		{"ECDSA P-384 SHA-384", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"}, []string{"-md", "sha384"}, "ECDSA with SHA-384"},
		{"ECDSA brainpoolP256r1", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:brainpoolP256r1"}, nil, "ECDSA with SHA-256 (brainpoolP256r1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, cert, sig := filepath.Join(dir, tc.name+".key"), filepath.Join(dir, tc.name+".pem"), filepath.Join(dir, tc.name+".p7s")
			openssl(t, append(append([]string{"req", "-x509", "-nodes"}, tc.newkey...), "-keyout", key, "-out", cert, "-subj", "/CN="+tc.name, "-days", "2")...)
			openssl(t, append([]string{"cms", "-sign", "-binary", "-in", data, "-signer", cert, "-inkey", key, "-outform", "DER", "-out", sig}, tc.signopt...)...)
			der, err := os.ReadFile(sig)
			if err != nil {
				t.Fatal(err)
			}
			d, err := ParseDetached(der)
			if err != nil {
				t.Fatalf("dangan cannot read OpenSSL's SignedData: %v", err)
			}
			v, err := d.VerifyContent(func(w io.Writer) { w.Write(content) })
			if err != nil {
				t.Fatalf("dangan does not verify OpenSSL's %s signature: %v", tc.name, err)
			}
			if v.Algorithm != tc.alg {
				t.Errorf("algorithm %q, want %q", v.Algorithm, tc.alg)
			}
			if _, err := d.VerifyContent(func(w io.Writer) { w.Write([]byte("changed")) }); !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("over changed content: %v", err)
			}
		})
	}
}
