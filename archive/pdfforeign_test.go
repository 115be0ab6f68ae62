package archive

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/formats/certdoc"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/formats/pdfsig"
	"github.com/dangan-archive/dangan/signing"
)

// PDFs signed in the test by another implementation (gmsm's pkcs7 with RSA and ECDSA keys
// of Go's standard library), then changed the ways attackers and honest later signers do.

func selfSigned(t *testing.T, key crypto.Signer, cn string) *smx509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
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

// foreignPDF is a one-page PDF signed (adbe.pkcs7.detached, SHA-256) with key.
func foreignPDF(t *testing.T, key crypto.Signer, cn string) []byte {
	t.Helper()
	return foreignPDFBy(t, key, selfSigned(t, key, cn))
}

func foreignPDFBy(t *testing.T, key crypto.Signer, cert *smx509.Certificate) []byte {
	t.Helper()
	doc, base, err := certdoc.PDF(&certdoc.Certificate{Identifier: "", Title: "营业执照", Holder: "某公司", Issuer: "某局",
		IssuedAt: time.Now(), ValidFrom: time.Now(), ValidUntil: time.Now().AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pdfsig.Prepare(doc, base, pdfsig.Field{Name: "bank", Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var covered bytes.Buffer
	p.WriteSigned(&covered)
	sd, err := pkcs7.NewSignedData(covered.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	cms, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := p.Fill(cms)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

var (
	lastStartxref = regexp.MustCompile(`startxref\s+(\d+)\s+%%EOF\s*$`)
	sizeEntry     = regexp.MustCompile(`/Size\s+(\d+)`)
)

// appendUpdate adds an incremental update defining the given objects.
func appendUpdate(t *testing.T, doc []byte, objs map[int]string) []byte {
	t.Helper()
	m := lastStartxref.FindSubmatch(doc)
	sizes := sizeEntry.FindAllSubmatch(doc, -1)
	if m == nil || len(sizes) == 0 {
		t.Fatal("not a PDF to update")
	}
	size, _ := strconv.Atoi(string(sizes[len(sizes)-1][1]))
	var w bytes.Buffer
	w.Write(doc)
	offs := map[int]int{}
	var nums []int
	for n := range objs {
		nums = append(nums, n)
	}
	for _, n := range nums {
		offs[n] = w.Len()
		fmt.Fprintf(&w, "%d 0 obj\n%s\nendobj\n", n, objs[n])
		size = max(size, n+1)
	}
	at := w.Len()
	w.WriteString("xref\n0 1\n0000000000 65535 f \n")
	for _, n := range nums {
		fmt.Fprintf(&w, "%d 1\n%010d 00000 n \n", n, offs[n])
	}
	fmt.Fprintf(&w, "trailer\n<< /Size %d /Root 1 0 R /Prev %s >>\nstartxref\n%d\n%%%%EOF\n", size, m[1], at)
	return w.Bytes()
}

func status(rep *CertReport, check, where string) string { return checkAt(rep, check, where).Status }

func TestForeignRSAAndECDSAPDFs(t *testing.T) {
	a := certArchive(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  string
	}{{"RSA", rsaKey, "RSA with SHA-256"}, {"ECDSA P-384", ecKey, "ECDSA with SHA-256"}} {
		t.Run(tc.name, func(t *testing.T) {
			doc := foreignPDF(t, tc.key, "某银行 "+tc.name)
			rep := a.VerifyCertificatePDF(doc)
			if len(rep.Signatures) != 1 || !rep.Signatures[0].Intact || rep.Signatures[0].Algorithm != tc.alg || rep.Signatures[0].Covers != "the whole file" {
				t.Fatalf("signatures %+v", rep.Signatures)
			}
			if rep.Valid || status(rep, CheckSigner, "signature 1") != eep.Fail {
				t.Fatalf("a self-signed foreign signer must be untrusted: %+v", rep.Checks)
			}

			// A byte of the signed revision changed.
			bad := append([]byte(nil), doc...)
			bad[len(bad)/4] ^= 0x01
			if r := a.VerifyCertificatePDF(bad); status(r, CheckDocument, "signature 1") != eep.Fail {
				t.Errorf("a changed signed byte: %+v", r.Checks)
			}

			// An approval-style update: an annotation on the page. Permitted.
			page := pageDict(t, doc)
			annotated := appendUpdate(t, doc, map[int]string{
				90: "<< /Type /Annot /Subtype /Text /Rect [10 10 30 30] /Contents (核验) >>",
				3:  strings.Replace(page, "/Annots [", "/Annots [90 0 R ", 1),
			})
			r := a.VerifyCertificatePDF(annotated)
			s := r.Signatures[0]
			if status(r, CheckChanges, "signature 1") != eep.Pass || !s.Intact || s.Revision != 2 || s.Revisions != 3 ||
				!strings.Contains(strings.Join(s.Changes, ","), "annotation") || !strings.Contains(s.Covers, "permitted") {
				t.Errorf("an added annotation: %+v %+v", s, r.Checks)
			}

			// A shadow-style update: the page's content replaced. Not permitted, and named.
			shadow := appendUpdate(t, doc, map[int]string{4: "<< /Length 22 >>\nstream\nBT /F1 12 Tf (x) Tj ET\nendstream"})
			r = a.VerifyCertificatePDF(shadow)
			c := checkAt(r, CheckChanges, "signature 1")
			if c.Status != eep.Fail || !strings.Contains(c.Found, "object 4") || !r.Signatures[0].Intact {
				t.Errorf("replaced page content: %+v", c)
			}
		})
	}
}

// checkAt is the verdict (pass or fail, not a warning) of a check at a place.
func checkAt(rep *CertReport, check, where string) CertCheck {
	for _, c := range rep.Checks {
		if c.Check == check && strings.HasPrefix(c.Where, where) && c.Status != eep.Warn {
			return c
		}
	}
	return CertCheck{}
}

// pageDict is the last version of object 3 (the page) of doc.
func pageDict(t *testing.T, doc []byte) string {
	t.Helper()
	i := bytes.LastIndex(doc, []byte("\n3 0 obj\n"))
	if i < 0 {
		t.Fatal("no page object 3")
	}
	rest := doc[i+len("\n3 0 obj\n"):]
	return string(rest[:bytes.Index(rest, []byte("\nendobj"))])
}

// A document timestamp (ETSI.RFC3161) by the archive's TSA over a foreign signature's
// revision: it verifies, and its trusted time is when the earlier signer's certificate is
// checked.
func TestDocumentTimestampDatesAnEarlierSignature(t *testing.T) {
	a := certArchive(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	doc := foreignPDF(t, key, "某银行")
	// The base of the signed document for a second update: the catalog and page as they are now.
	cat := lastObject(t, doc, 1)
	page := pageDict(t, doc)
	size, _ := strconv.Atoi(string(sizeEntry.FindAllSubmatch(doc, -1)[len(sizeEntry.FindAllSubmatch(doc, -1))-1][1]))
	at, _ := strconv.ParseInt(string(lastStartxref.FindSubmatch(doc)[1]), 10, 64)
	base := pdfsig.Base{Catalog: 1, Page: 3, CatalogDict: strings.TrimSuffix(strings.TrimPrefix(cat, "<<"), ">>"),
		PageDict: strings.TrimSuffix(strings.TrimPrefix(page, "<<"), ">>"), Size: size, XrefAt: at}
	p, err := pdfsig.Prepare(doc, base, pdfsig.Field{Name: "archive-timestamp", DocTimeStamp: true, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	h := sm3.New()
	p.WriteSigned(h)
	token, err := a.tsa.Timestamp(t.Context(), h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := p.Fill(token)
	if err != nil {
		t.Fatal(err)
	}
	rep := a.VerifyCertificatePDF(stamped)
	if len(rep.Signatures) != 2 || rep.Signatures[1].Kind != "document timestamp" || !rep.Signatures[1].Intact || !rep.Signatures[1].Trusted {
		t.Fatalf("signatures: %+v\n%+v", rep.Signatures, rep.Checks)
	}
	if status(rep, CheckTimestamp, "document timestamp 2") != eep.Pass || status(rep, CheckChanges, "signature 1") != eep.Pass {
		t.Fatalf("checks: %+v", rep.Checks)
	}
	signer := checkAt(rep, CheckSigner, "signature 1")
	if !strings.Contains(signer.Detail, "document timestamp of signature 2") {
		t.Errorf("the earlier signer is not checked at the document timestamp's time: %+v", signer)
	}
	// The timestamped bytes changed: the document timestamp fails.
	bad := append([]byte(nil), stamped...)
	bad[len(doc)+40] ^= 0x01
	if r := a.VerifyCertificatePDF(bad); status(r, CheckSignature, "document timestamp 2") != eep.Fail && status(r, CheckDocument, "document timestamp 2") != eep.Fail {
		t.Errorf("a changed timestamped byte: %+v", r.Checks)
	}
}

func lastObject(t *testing.T, doc []byte, n int) string {
	t.Helper()
	head := []byte(fmt.Sprintf("\n%d 0 obj\n", n))
	i := bytes.LastIndex(doc, head)
	if i < 0 {
		t.Fatalf("no object %d", n)
	}
	rest := doc[i+len(head):]
	return string(rest[:bytes.Index(rest, []byte("\nendobj"))])
}

// A county that trusts a foreign root (here the root a Tecxoft-signed corpus file carries)
// puts it in the trust directory: the signer then chains to that named anchor, checked at
// the RSA TSA's trusted time (2018), although the signer's certificate expired in 2022.
func TestTrustDirAnchorsAForeignSignerAtItsTimestamp(t *testing.T) {
	doc, err := os.ReadFile("../../shared/corpus/signed/pdf-rsa-with-tsa-tecxoft.pdf")
	if err != nil {
		t.Fatal(err)
	}
	sig := pdfsig.Inspect(doc).Signatures[0]
	d, err := signing.ParseDetached(sig.Contents)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range d.Certs {
		if c.Subject.CommonName == "Tecxoft Root CA" {
			os.WriteFile(filepath.Join(dir, "tecxoft-root.pem"), signing.CertPEM(c), 0o644)
		}
	}
	untrusted := certArchive(t)
	if r := untrusted.VerifyCertificatePDF(doc); r.Valid || status(r, CheckSigner, "signature 1") != eep.Fail {
		t.Fatalf("trusted without the anchor: %+v", r.Checks)
	}
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true, TrustDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep := a.VerifyCertificatePDF(doc)
	signer := checkAt(rep, CheckSigner, "signature 1")
	ts := checkAt(rep, CheckTimestamp, "signature 1")
	if signer.Status != eep.Pass || !strings.Contains(signer.Detail, `"Tecxoft Root CA"`) || !strings.Contains(signer.Detail, "2018-09-01") {
		t.Errorf("signer: %+v", signer)
	}
	if !strings.Contains(fmt.Sprint(rep.Checks), "signed with RSA with SHA-1: weak algorithm") {
		t.Errorf("the SHA-1 certificate signatures of the chain are not reported: %+v", rep.Checks)
	}
	if ts.Status != eep.Pass || rep.Signatures[0].Anchor != "Tecxoft Root CA" || !rep.Valid {
		t.Errorf("timestamp %+v, summary %+v, checks %+v", ts, rep.Signatures[0], rep.Checks)
	}
	if _, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), TrustDir: filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing trust directory was accepted")
	}
}

// Revocation from the file: a DSS whose CRL, signed by the signer's trusted CA, revokes the
// signer's certificate makes the signature invalid; the same DSS without the entry passes.
func TestRevocationFromTheDSS(t *testing.T) {
	caKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "某省数字证书认证中心"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().AddDate(5, 0, 0), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: "某银行"},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	leaf, _ := smx509.ParseCertificate(leafDER)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.pem"), signing.CertPEM(&smx509.Certificate{Raw: caDER}), 0o644)
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true, TrustDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	doc := foreignPDFBy(t, key, leaf)
	if r := a.VerifyCertificatePDF(doc); !r.Valid || status(r, CheckRevocation, "signature 1") != "" {
		t.Fatalf("without a DSS: valid %v, %+v", r.Valid, r.Checks)
	}
	withCRL := func(revoked bool) []byte {
		var entries []x509.RevocationListEntry
		if revoked {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(4242), RevocationTime: time.Now().Add(-time.Hour)})
		}
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(24 * time.Hour),
			RevokedCertificateEntries: entries}, ca, caKey)
		if err != nil {
			t.Fatal(err)
		}
		cat := lastObject(t, doc, 1)
		return appendUpdate(t, doc, map[int]string{
			1:  strings.TrimSuffix(strings.TrimSpace(cat), ">>") + " /DSS 91 0 R >>",
			91: "<< /Type /DSS /CRLs [92 0 R] /Certs [93 0 R] >>",
			92: fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(crl), crl),
			93: fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(caDER), caDER),
		})
	}
	good := a.VerifyCertificatePDF(withCRL(false))
	if c := checkAt(good, CheckRevocation, "signature 1"); c.Status != eep.Pass || !good.Valid || status(good, CheckChanges, "signature 1") != eep.Pass {
		t.Errorf("a CRL that does not list the signer: %+v %+v", c, good.Checks)
	}
	bad := a.VerifyCertificatePDF(withCRL(true))
	if c := checkAt(bad, CheckRevocation, "signature 1"); c.Status != eep.Fail || bad.Valid || !strings.Contains(c.Detail, "revokes") {
		t.Errorf("a CRL that revokes the signer: %+v", c)
	}
}
