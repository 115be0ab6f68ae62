package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// Interoperability with gmsm's pkcs7, an implementation dangan does not write: it verifies
// dangan's timestamp tokens and detached PDF signature CMS, and dangan verifies SignedData
// that gmsm makes, with SM2, RSA and ECDSA.

func TestGmsmVerifiesDanganTokensAndSignatures(t *testing.T) {
	root, _ := NewRoot(CertSpec{CommonName: "root"})
	dept, _ := root.Issue(CertSpec{CommonName: "dept", Usage: UsageSigning})
	tsa, _ := root.Issue(CertSpec{CommonName: "tsa", Usage: UsageTimestamping})
	content := []byte("the byte ranges of a signed PDF")
	sum := sm3.Sum(content)

	token, err := NewTSA(tsa).Timestamp(context.Background(), sum[:])
	if err != nil {
		t.Fatal(err)
	}
	p7, err := pkcs7.Parse(token)
	if err != nil {
		t.Fatalf("gmsm cannot parse dangan's timestamp token: %v", err)
	}
	if err := p7.Verify(); err != nil {
		t.Fatalf("gmsm does not verify dangan's timestamp token: %v", err)
	}

	cms, err := SignDetached(context.Background(), dept, sum[:], time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p7, err = pkcs7.Parse(cms)
	if err != nil {
		t.Fatalf("gmsm cannot parse dangan's detached signature: %v", err)
	}
	p7.Content = content
	if err := p7.Verify(); err != nil {
		t.Fatalf("gmsm does not verify dangan's detached signature: %v", err)
	}
	p7.Content = []byte("other bytes")
	if err := p7.Verify(); err == nil {
		t.Fatal("gmsm verified dangan's signature over other bytes")
	}
}

// foreignSigner is a key and a self-signed certificate of a non-SM2 algorithm.
func foreignSigner(t *testing.T, key crypto.Signer) *smx509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "foreign signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDanganVerifiesSignedDataMadeByGmsm(t *testing.T) {
	sm2Root, _ := NewRoot(CertSpec{CommonName: "root"})
	sm2Dept, _ := sm2Root.Issue(CertSpec{CommonName: "dept", Usage: UsageSigning})
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	content := []byte("a document signed elsewhere")
	for _, tc := range []struct {
		name string
		sd   func() (*pkcs7.SignedData, error)
		cert *smx509.Certificate
		key  crypto.PrivateKey
		alg  string
	}{
		{"SM2", func() (*pkcs7.SignedData, error) { return pkcs7.NewSMSignedData(content) }, sm2Dept.Cert, sm2Dept.Key, "SM2 with SM3"},
		{"RSA", func() (*pkcs7.SignedData, error) { return pkcs7.NewSignedData(content) }, foreignSigner(t, rsaKey), rsaKey, "RSA with SHA-256"},
		{"ECDSA", func() (*pkcs7.SignedData, error) { return pkcs7.NewSignedData(content) }, foreignSigner(t, ecKey), ecKey, "ECDSA with SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sd, err := tc.sd()
			if err != nil {
				t.Fatal(err)
			}
			if tc.name != "SM2" {
				sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
			}
			if err := sd.AddSigner(tc.cert, tc.key, pkcs7.SignerInfoConfig{}); err != nil {
				t.Fatal(err)
			}
			sd.Detach()
			der, err := sd.Finish()
			if err != nil {
				t.Fatal(err)
			}
			d, err := ParseDetached(der)
			if err != nil {
				t.Fatal(err)
			}
			v, err := d.VerifyContent(func(w io.Writer) { w.Write(content) })
			if err != nil {
				t.Fatalf("dangan does not verify gmsm's %s SignedData: %v", tc.name, err)
			}
			if v.Algorithm != tc.alg {
				t.Errorf("algorithm %q, want %q", v.Algorithm, tc.alg)
			}
			if _, err := d.VerifyContent(func(w io.Writer) { w.Write([]byte("changed")) }); !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("changed content: %v", err)
			}
		})
	}
}

// The algorithms by themselves, over keys made here: each verifies, and each fails when
// the message changes.
func TestVerifyMessageAlgorithms(t *testing.T) {
	msg := []byte("signed bytes")
	write := func(b []byte) func(io.Writer) { return func(w io.Writer) { w.Write(b) } }
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	sha := func(h crypto.Hash, b []byte) []byte { x := h.New(); x.Write(b); return x.Sum(nil) }
	pkcs1, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, sha(crypto.SHA256, msg))
	pss, _ := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, sha(crypto.SHA256, msg), &rsa.PSSOptions{SaltLength: 32})
	e384, _ := ecdsa.SignASN1(rand.Reader, p384, sha(crypto.SHA384, msg))
	e521, _ := ecdsa.SignASN1(rand.Reader, p521, sha(crypto.SHA512, msg))
	ed := ed25519.Sign(edKey, msg)
	ed448Pub, ed448Key, _ := ed448.GenerateKey(rand.Reader)
	ed448Sig := ed448.Sign(ed448Key, msg, "")
	pssParamsDER := mustMarshal(struct {
		Hash pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
		MGF  pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
		Salt int                      `asn1:"explicit,tag:2"`
	}{pkix.AlgorithmIdentifier{Algorithm: oidSHA256}, pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: rawOf(mustMarshal(pkix.AlgorithmIdentifier{Algorithm: oidSHA256}))}, 32})
	for _, tc := range []struct {
		name string
		pub  any
		alg  pkix.AlgorithmIdentifier
		sig  []byte
	}{
		{"RSA PKCS#1 v1.5", &rsaKey.PublicKey, pkix.AlgorithmIdentifier{Algorithm: oid(1, 2, 840, 113549, 1, 1, 11)}, pkcs1},
		{"RSA PSS", &rsaKey.PublicKey, pkix.AlgorithmIdentifier{Algorithm: oidRSAPSS, Parameters: rawOf(pssParamsDER)}, pss},
		{"ECDSA P-384", &p384.PublicKey, pkix.AlgorithmIdentifier{Algorithm: oid(1, 2, 840, 10045, 4, 3, 3)}, e384},
		{"ECDSA P-521", &p521.PublicKey, pkix.AlgorithmIdentifier{Algorithm: oid(1, 2, 840, 10045, 4, 3, 4)}, e521},
		{"Ed25519", edPub, pkix.AlgorithmIdentifier{Algorithm: oidEd25519}, ed},
		{"Ed448", ed448Pub, pkix.AlgorithmIdentifier{Algorithm: oidEd448}, ed448Sig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyMessage(tc.pub, tc.alg, nil, write(msg), tc.sig); err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyMessage(tc.pub, tc.alg, nil, write([]byte("other")), tc.sig); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("another message: %v", err)
			}
		})
	}

	if _, err := VerifyMessage(&rsaKey.PublicKey, pkix.AlgorithmIdentifier{Algorithm: oid(1, 2, 840, 113549, 1, 1, 4)}, nil, write(msg), pkcs1); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("MD5 with RSA: %v", err)
	}
}

func rawOf(der []byte) asn1.RawValue { return asn1.RawValue{FullBytes: der} }
