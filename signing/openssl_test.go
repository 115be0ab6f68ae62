package signing

import (
	"encoding/asn1"
	"encoding/base64"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/internal/testenv"
)

// Interop with the system's OpenSSL 3: scripts/test.sh installs it, so a missing binary fails.

func asn1Unmarshal(b []byte, v any) ([]byte, error) { return asn1.Unmarshal(b, v) }

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pubPEM(t *testing.T, c *smx509.Certificate) []byte {
	t.Helper()
	der, err := smx509.MarshalPKIXPublicKey(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return []byte("-----BEGIN PUBLIC KEY-----\n" + wrap64(der) + "-----END PUBLIC KEY-----\n")
}

func wrap64(der []byte) string {
	s := base64Std(der)
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n")
	return b.String()
}

func TestOpenSSLVerifiesDanganSignaturesAndCertificates(t *testing.T) {
	p := testPKI(t)
	dept, err := p.Department("91610830MA6YXXXX0A", "清涧县市场监督管理局")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	msg := []byte("<被签名对象 eep版本=\"2009\">…</被签名对象>")
	sig, err := Sign(dept.Key, msg)
	if err != nil {
		t.Fatal(err)
	}
	out := openssl(t, "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:"+DefaultUID,
		"-pubin", "-inkey", writeFile(t, dir, "pub.pem", pubPEM(t, dept.Cert)),
		"-in", writeFile(t, dir, "msg", msg), "-sigfile", writeFile(t, dir, "sig", sig))
	if !strings.Contains(out, "Signature Verified Successfully") {
		t.Fatalf("openssl did not verify: %s", out)
	}
	root := writeFile(t, dir, "root.pem", CertPEM(p.Root.Cert))
	for name, id := range map[string]*Identity{"department": dept, "archive": p.Archive, "tsa": p.TSA} {
		out := openssl(t, "verify", "-vfyopt", "distid:"+DefaultUID, "-CAfile", root, writeFile(t, dir, name+".pem", CertPEM(id.Cert)))
		if !strings.Contains(out, ": OK") {
			t.Fatalf("openssl verify %s: %s", name, out)
		}
	}
	// The TSA certificate's EKU is critical and timeStamping only.
	text := openssl(t, "x509", "-noout", "-text", "-in", filepath.Join(dir, "tsa.pem"))
	if !strings.Contains(text, "X509v3 Extended Key Usage: critical") || !strings.Contains(text, "Time Stamping") {
		t.Fatalf("TSA certificate EKU not critical timeStamping:\n%s", text)
	}
}

func TestDanganVerifiesOpenSSLSignatures(t *testing.T) {
	dir := t.TempDir()
	openssl(t, "genpkey", "-algorithm", "SM2", "-out", filepath.Join(dir, "k.pem"))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "k.pem"))
	key, err := ParseKeyPEM(keyPEM, nil)
	if err != nil {
		t.Fatalf("dangan cannot read an OpenSSL SM2 key: %v", err)
	}
	msg := []byte("signed by OpenSSL")
	openssl(t, "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:"+DefaultUID,
		"-inkey", filepath.Join(dir, "k.pem"), "-in", writeFile(t, dir, "m", msg), "-out", filepath.Join(dir, "s"))
	sig, _ := os.ReadFile(filepath.Join(dir, "s"))
	if err := Verify(&key.PublicKey, msg, sig); err != nil {
		t.Fatalf("OpenSSL's signature rejected: %v", err)
	}
	// And OpenSSL reads dangan's encrypted PKCS#8.
	enc, _ := MarshalKeyPEM(key, []byte("pw"))
	out := openssl(t, "pkey", "-in", writeFile(t, dir, "enc.pem", enc), "-passin", "pass:pw", "-noout", "-text")
	if !strings.Contains(out, "SM2") && !strings.Contains(out, "Private-Key") {
		t.Fatalf("openssl could not read dangan's encrypted key: %s", out)
	}
}

// TestDifferentialAgainstOpenSSL signs random messages under random keys in both directions,
// to catch library regressions such as gmsm v0.44.0's amd64 bug that rejected valid signatures.
func TestDifferentialAgainstOpenSSL(t *testing.T) {
	dir := t.TempDir()
	rng := mrand.New(mrand.NewPCG(1, uint64(os.Getpid())))
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	for i := 0; i < rounds; i++ {
		kp := filepath.Join(dir, "k.pem")
		openssl(t, "genpkey", "-algorithm", "SM2", "-out", kp)
		keyPEM, _ := os.ReadFile(kp)
		key, err := ParseKeyPEM(keyPEM, nil)
		if err != nil {
			t.Fatal(err)
		}
		pub := writeFile(t, dir, "pub.pem", []byte(openssl(t, "pkey", "-in", kp, "-pubout")))
		for j := 0; j < 4; j++ {
			msg := make([]byte, rng.IntN(3000))
			for k := range msg {
				msg[k] = byte(rng.UintN(256))
			}
			mp := writeFile(t, dir, "m", msg)
			// dangan → OpenSSL
			sig, err := Sign(key, msg)
			if err != nil {
				t.Fatal(err)
			}
			out := openssl(t, "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:"+DefaultUID,
				"-pubin", "-inkey", pub, "-in", mp, "-sigfile", writeFile(t, dir, "s", sig))
			if !strings.Contains(out, "Verified Successfully") {
				t.Fatalf("round %d.%d: OpenSSL rejected dangan's signature", i, j)
			}
			// OpenSSL → dangan
			sp := filepath.Join(dir, "os")
			openssl(t, "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:"+DefaultUID, "-inkey", kp, "-in", mp, "-out", sp)
			osig, _ := os.ReadFile(sp)
			if err := Verify(&key.PublicKey, msg, osig); err != nil {
				t.Fatalf("round %d.%d: dangan rejected OpenSSL's signature: %v", i, j, err)
			}
		}
	}
}

func TestOpenSSLTimestampQueryAnsweredByDanganTSA(t *testing.T) {
	p := testPKI(t)
	tsa := NewTSA(p.TSA)
	dir := t.TempDir()
	data := writeFile(t, dir, "data", []byte("档案 timestamped"))
	q := filepath.Join(dir, "q.tsq")
	openssl(t, "ts", "-query", "-data", data, "-sm3", "-cert", "-out", q)
	reqDER, _ := os.ReadFile(q)
	resp := tsa.Respond(reqDER)
	r := writeFile(t, dir, "r.tsr", resp)
	text := openssl(t, "ts", "-reply", "-in", r, "-text")
	for _, want := range []string{"Status: Granted", "Hash Algorithm: sm3", "Nonce: 0x"} {
		if !strings.Contains(text, want) {
			t.Fatalf("openssl ts -reply output lacks %q:\n%s", want, text)
		}
	}
	sum := sm3.Sum([]byte("档案 timestamped"))
	tok, err := ParseTimestampReply(resp, sum[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyToken(tok, sum[:], p.Trust()); err != nil {
		t.Fatalf("token answering OpenSSL's query does not verify: %v", err)
	}
}
