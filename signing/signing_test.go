package signing

import (
	"bytes"
	"context"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

func TestSignVerifyRoundTripAndTamper(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("被签名对象 — signed bytes")
	sig, err := Sign(key, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(&key.PublicKey, msg, sig); err != nil {
		t.Fatalf("own signature rejected: %v", err)
	}
	// The raw r||s form of the same signature is accepted too.
	raw := rawRS(t, sig)
	if err := Verify(&key.PublicKey, msg, raw); err != nil {
		t.Fatalf("raw r||s rejected: %v", err)
	}
	tampered := append([]byte{}, msg...)
	tampered[0] ^= 1
	other, _ := GenerateKey()
	for name, check := range map[string]error{
		"changed message": Verify(&key.PublicKey, tampered, sig),
		"other key":       Verify(&other.PublicKey, msg, sig),
		"garbage":         Verify(&key.PublicKey, msg, []byte("not a signature")),
	} {
		if !errors.Is(check, ErrBadSignature) {
			t.Errorf("%s: got %v, want ErrBadSignature", name, check)
		}
	}
	// Streaming: hashing in pieces signs the same value.
	h := NewSignatureHash(&key.PublicKey)
	h.Write(msg[:5])
	h.Write(msg[5:])
	sig2, err := SignDigest(key, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(&key.PublicKey, msg, sig2); err != nil {
		t.Fatalf("streamed signature rejected: %v", err)
	}
}

func rawRS(t *testing.T, der []byte) []byte {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if _, err := asn1Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out
}

func TestKeyPEMPlainAndEncrypted(t *testing.T) {
	key, _ := GenerateKey()
	for _, pw := range [][]byte{nil, []byte("档案-secret")} {
		p, err := MarshalKeyPEM(key, pw)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseKeyPEM(p, pw)
		if err != nil {
			t.Fatalf("password %q: %v", pw, err)
		}
		if !back.Equal(key) {
			t.Fatalf("password %q: key changed in a round trip", pw)
		}
		if len(pw) > 0 {
			if _, err := ParseKeyPEM(p, nil); !errors.Is(err, ErrNeedPassword) {
				t.Fatalf("encrypted key without password: got %v", err)
			}
			if _, err := ParseKeyPEM(p, []byte("wrong")); err == nil {
				t.Fatal("encrypted key opened with a wrong password")
			}
		}
	}
}

func testPKI(t *testing.T) *PKI {
	t.Helper()
	p, created, err := OpenDevPKI(t.TempDir(), nil, "测试县档案馆", nil)
	if err != nil || !created {
		t.Fatalf("dev PKI: created=%v err=%v", created, err)
	}
	return p
}

func TestDevPKIChainsAndReload(t *testing.T) {
	p := testPKI(t)
	dept, err := p.Department("91610830MA6YXXXX0A", "清涧县市场监督管理局")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := VerifyChain(dept.Cert, dept.Chain, p.Trust(), now); err != nil {
		t.Fatalf("department chain: %v", err)
	}
	if _, err := VerifyChain(p.TSA.Cert, p.TSA.Chain, p.Trust(), now, smx509.ExtKeyUsageTimeStamping); err != nil {
		t.Fatalf("TSA chain: %v", err)
	}
	if _, err := VerifyChain(dept.Cert, dept.Chain, p.Trust(), now.AddDate(20, 0, 0)); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("expired certificate accepted: %v", err)
	}
	other := testPKI(t)
	if _, err := VerifyChain(dept.Cert, dept.Chain, other.Trust(), now); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("certificate trusted by a foreign root: %v", err)
	}
	// Reopening loads the same identities; the department key persists.
	again, created, err := OpenDevPKI(p.dir, nil, "ignored", nil)
	if err != nil || created {
		t.Fatalf("reopen: created=%v err=%v", created, err)
	}
	d2, err := again.Department("91610830MA6YXXXX0A", "")
	if err != nil || !d2.Cert.Equal(dept.Cert) {
		t.Fatalf("department identity not persisted: %v", err)
	}
	if _, err := p.Department("../../etc", "x"); err == nil {
		t.Fatal("a non-USCC department name was accepted as a file name")
	}
}

func TestTimestampTokenVerifiesAndRejectsTampering(t *testing.T) {
	p := testPKI(t)
	tsa := NewTSA(p.TSA)
	digest := sm3.Sum([]byte("a signature value"))
	tok, err := tsa.Timestamp(context.Background(), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	info, err := VerifyToken(tok, digest[:], p.Trust())
	if err != nil {
		t.Fatalf("fresh token rejected: %v", err)
	}
	if d := time.Since(info.GenTime); d < -2*time.Second || d > time.Minute {
		t.Fatalf("genTime %v is not now", info.GenTime)
	}
	other := sm3.Sum([]byte("other"))
	if _, err := VerifyToken(tok, other[:], p.Trust()); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("token accepted for other data: %v", err)
	}
	if _, err := VerifyToken(tok, digest[:], testPKI(t).Trust()); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("token accepted under a foreign root: %v", err)
	}
	// Flip every byte of the token in turn: none may still verify, except inside the copy of
	// the root certificate in the unsigned certificate bag, which is never trusted from there:
	// trust comes from the configured roots.
	rootAt := bytes.Index(tok, p.Root.Cert.Raw)
	if rootAt < 0 {
		t.Fatal("token does not carry the chain")
	}
	for i := range tok {
		if i >= rootAt && i < rootAt+len(p.Root.Cert.Raw) {
			continue
		}
		bad := append([]byte{}, tok...)
		bad[i] ^= 0x01
		if _, err := VerifyToken(bad, digest[:], p.Trust()); err == nil {
			t.Fatalf("token with byte %d flipped still verifies", i)
		}
	}
	// A token signed by a signing (not timestamping) certificate is refused.
	dept, _ := p.Department("91610830MA6YXXXX0A", "dept")
	fake := NewTSA(dept)
	ftok, _ := fake.Timestamp(context.Background(), digest[:])
	if _, err := VerifyToken(ftok, digest[:], p.Trust()); err == nil {
		t.Fatal("token from a certificate without the timeStamping EKU verified")
	}
}

func TestTSARespondNonceAndRejections(t *testing.T) {
	p := testPKI(t)
	tsa := NewTSA(p.TSA)
	digest := sm3.Sum([]byte("x"))
	nonce := big.NewInt(424242)
	req, err := NewTimestampRequest(digest[:], nonce)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseTimestampReply(tsa.Respond(req), digest[:], nonce)
	if err != nil {
		t.Fatal(err)
	}
	info, err := VerifyToken(tok, digest[:], p.Trust())
	if err != nil || info.Nonce.Cmp(nonce) != 0 {
		t.Fatalf("nonce not echoed: %v %v", err, info)
	}
	if _, err := ParseTimestampReply(tsa.Respond([]byte("junk")), digest[:], nonce); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("junk request was granted: %v", err)
	}
	if _, err := ParseTimestampReply(tsa.Respond(req), digest[:], big.NewInt(1)); err == nil {
		t.Fatal("reply with another nonce accepted")
	}
}

func TestSaveAndLoadKeyFile(t *testing.T) {
	key, _ := GenerateKey()
	path := filepath.Join(t.TempDir(), "k.pem")
	if err := SaveKey(path, key, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	back, err := LoadKey(path, []byte("pw"))
	if err != nil || !bytes.Equal(back.D.Bytes(), key.D.Bytes()) {
		t.Fatalf("load: %v", err)
	}
}

func TestOIDRoundTripWithBigArcs(t *testing.T) {
	for _, oid := range []string{DefaultTSAPolicy, "1.2.156.10197.1.501", "2.999.1", "0.39"} {
		der, err := MarshalOID(oid)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseOID(der)
		if err != nil || back != oid {
			t.Fatalf("%s: got %q, %v", oid, back, err)
		}
	}
	// Agrees with encoding/asn1 where that can encode at all.
	der, _ := MarshalOID("1.2.156.10197.1.501")
	if std, _ := asn1.Marshal(OIDSM2WithSM3); !bytes.Equal(der, std) {
		t.Fatalf("MarshalOID %x, encoding/asn1 %x", der, std)
	}
	for _, bad := range []string{"1", "3.1", "1.40", "1.x"} {
		if _, err := MarshalOID(bad); err == nil {
			t.Errorf("MarshalOID(%q) accepted", bad)
		}
	}
}

func TestHTTPTimestamperAgainstAServer(t *testing.T) {
	p := testPKI(t)
	tsa := NewTSA(p.TSA)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/timestamp-query" {
			http.Error(w, "bad content type", http.StatusUnsupportedMediaType)
			return
		}
		req, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(tsa.Respond(req))
	}))
	defer srv.Close()
	digest := sm3.Sum([]byte("stamp me"))
	client := &HTTPTimestamper{URL: srv.URL}
	tok, err := client.Timestamp(context.Background(), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyToken(tok, digest[:], p.Trust()); err != nil {
		t.Fatalf("token from the HTTP TSA: %v", err)
	}
	// A server that is down or answers garbage is an error, not a token.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("nonsense")) }))
	defer bad.Close()
	if _, err := (&HTTPTimestamper{URL: bad.URL}).Timestamp(context.Background(), digest[:]); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("garbage reply: %v", err)
	}
	bad.Close()
	if _, err := (&HTTPTimestamper{URL: bad.URL}).Timestamp(context.Background(), digest[:]); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("closed server: %v", err)
	}
}
