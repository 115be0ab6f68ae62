//go:build cgo

package pkcs11

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/dangan-archive/dangan/signing"
)

const softhsm = "/usr/lib/softhsm/libsofthsm2.so"

// softToken makes a SoftHSM2 token in a temporary directory and an ECDSA P-256 key pair in
// it labelled dangan-archive (SoftHSM has no SM2: the provider's plumbing is the same).
func softToken(t *testing.T) Config {
	t.Helper()
	if _, err := os.Stat(softhsm); err != nil {
		t.Fatalf("SoftHSM2 is not installed (Debian package softhsm2): run scripts/test.sh, which installs what the tests need: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "dangan-test", "--pin", "123456", "--so-pin", "654321").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	cfg := Config{Module: softhsm, Token: "dangan-test", PIN: "123456"}
	// The key pair, made in the token as an operator's tool would.
	ctx := p11.New(softhsm)
	if err := ctx.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer func() { ctx.Finalize(); ctx.Destroy() }()
	slots, _ := ctx.GetSlotList(true)
	var slot uint
	for _, s := range slots {
		if ti, _ := ctx.GetTokenInfo(s); ti.Label == "dangan-test" {
			slot = s
		}
	}
	sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.CloseSession(sh)
	if err := ctx.Login(sh, p11.CKU_USER, "123456"); err != nil {
		t.Fatal(err)
	}
	params, _ := asn1.Marshal(oidP256)
	_, _, err = ctx.GenerateKeyPair(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)},
		[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_VERIFY, true),
			p11.NewAttribute(p11.CKA_EC_PARAMS, params), p11.NewAttribute(p11.CKA_LABEL, "dangan-archive")},
		[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_SIGN, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true), p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			p11.NewAttribute(p11.CKA_LABEL, "dangan-archive")})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A key in SoftHSM2 signs through the provider: the signature verifies with Go's ECDSA,
// and a certificate it signs verifies with OpenSSL. A key the token lacks is ErrNoKey, so
// that the PKI falls back to its files; a wrong PIN is refused.
func TestSoftHSMSigner(t *testing.T) {
	cfg := softToken(t)
	if _, err := Open(Config{Module: softhsm, Token: "dangan-test", PIN: "000000"}); err == nil {
		t.Fatal("a wrong PIN was accepted")
	}
	if _, err := Open(Config{Module: softhsm, Token: "no-such-token", PIN: "123456"}); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("an unknown token: %v", err)
	}
	p, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Signer("tsa", nil); !errors.Is(err, signing.ErrNoKey) {
		t.Fatalf("a key the token lacks: %v", err)
	}
	key, err := p.Signer("archive", nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params().Name != "P-256" {
		t.Fatalf("public key %T", key.Public())
	}
	digest := sha256.Sum256([]byte("档案 dangan"))
	sig, err := key.Sign(rand.Reader, digest[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatal("the device's signature does not verify")
	}
	other := sha256.Sum256([]byte("another message"))
	if ecdsa.VerifyASN1(pub, other[:], sig) {
		t.Fatal("the signature verifies over another digest")
	}

	// A self-signed certificate signed in the device, checked by OpenSSL.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "dangan HSM test", Organization: []string{"dangan"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hsm.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	if out, err := exec.Command("openssl", "verify", "-CAfile", path, path).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	// Many signatures at once share the sessions.
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			sig, err := key.Sign(rand.Reader, digest[:], nil)
			if err == nil && !ecdsa.VerifyASN1(pub, digest[:], sig) {
				err = errors.New("a concurrent signature does not verify")
			}
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
