package archive

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/formats/certdoc"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/internal/testenv"
)

const issuerUSCC = "11430000006122244L"

func certArchive(t *testing.T) *Archive {
	t.Helper()
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true, ArchiveName: "某县档案馆"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

var issuer = Principal{Role: RoleIssuer, Org: issuerUSCC}

// licence is valid from the first day of this year for five years, so it is valid on
// whatever day the test runs.
func licence() CertificateRequest {
	year := time.Now().In(eep.CST()).Year()
	return CertificateRequest{
		TypeCode: "11100000000013338W011", Title: "食品经营许可证", Number: "JY14301020012345",
		Holder:    CertHolder{Name: "张喆小吃店", Code: "91110108MA01A2B3CF", CodeType: "001"},
		Fields:    []certdoc.Field{{Name: "经营场所", Value: "某县城关镇人民路18号"}},
		ValidFrom: fmt.Sprintf("%d-01-01", year), ValidUntil: fmt.Sprintf("%d-12-31", year+4), IssuerName: "某县市场监督管理局",
	}
}

func fetch(t *testing.T, a *Archive, id, format string) []byte {
	t.Helper()
	rc, _, err := a.CertificateFile(t.Context(), Principal{Role: RoleArchive}, id, format)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func verifyFile(t *testing.T, a *Archive, format string, b []byte) *CertReport {
	t.Helper()
	if format == "pdf" {
		return a.VerifyCertificatePDF(b)
	}
	rep, err := a.VerifyCertificateOFD(b)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func check(rep *CertReport, name string) (CertCheck, bool) {
	for _, c := range rep.Checks {
		if c.Check == name {
			return c, true
		}
	}
	return CertCheck{}, false
}

func TestCertificateRoundTrip(t *testing.T) {
	a := certArchive(t)
	c, err := a.IssueCertificate(t.Context(), issuer, licence())
	if err != nil {
		t.Fatal(err)
	}
	year := time.Now().In(eep.CST()).Year()
	if !strings.HasPrefix(c.Identifier, "1.2.156.3005.2.11100000000013338W011.11430000006122244L.") || !strings.Contains(c.Identifier, ".001.") || c.Version != 1 {
		t.Fatalf("identifier %s", c.Identifier)
	}
	if !strings.Contains(c.Identifier, "."+strconv.Itoa(year)+"0000001.") {
		t.Errorf("the first serial of the year is not %d0000001: %s", year, c.Identifier)
	}
	// The signed PDF's text is real text: pdftotext returns the title and the holder, and
	// every font is embedded.
	pdfPath := filepath.Join(t.TempDir(), "c.pdf")
	os.WriteFile(pdfPath, fetch(t, a, c.Identifier, "pdf"), 0o644)
	text, err := exec.Command(testenv.Tool(t, "pdftotext"), "-enc", "UTF-8", pdfPath, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, text)
	}
	for _, want := range []string{"食品经营许可证", "张喆小吃店", c.Identifier} {
		if !strings.Contains(string(text), want) {
			t.Errorf("pdftotext does not return %q", want)
		}
	}
	fonts, err := exec.Command(testenv.Tool(t, "pdffonts"), pdfPath).CombinedOutput()
	if err != nil || strings.Count(string(fonts), " yes yes yes ") != 1 || strings.Count(string(fonts), "\n") != 3 {
		t.Errorf("pdffonts: every font embedded, subset, with a ToUnicode map:\n%s", fonts)
	}

	for _, format := range []string{"pdf", "ofd"} {
		b := fetch(t, a, c.Identifier, format)
		rep := verifyFile(t, a, format, b)
		if !rep.Valid || rep.Identifier != c.Identifier || rep.Certificate == nil || rep.Certificate.Status != CertValid {
			t.Fatalf("%s: %+v", format, rep)
		}
		for _, name := range []string{CheckIdentifier, CheckDocument, CheckSignature, CheckSigner, CheckTimestamp, CheckStatus, CheckRegistered} {
			if c, ok := check(rep, name); !ok || c.Status != eep.Pass {
				t.Errorf("%s: check %s: %+v", format, name, c)
			}
		}
		if format == "ofd" {
			if c, ok := check(rep, CheckSeal); !ok || c.Status != eep.Pass {
				t.Errorf("ofd: seal: %+v", c)
			}
		}
		if rep.TimestampAt == nil || len(rep.Signers) == 0 || rep.Signers[0] != "某县市场监督管理局" {
			t.Errorf("%s: timestamp %v, signers %v", format, rep.TimestampAt, rep.Signers)
		}

		// One byte changed anywhere in the document: invalid, and the failing check named.
		for _, at := range []int{len(b) / 3, len(b) / 2, len(b) - 10} {
			bad := append([]byte(nil), b...)
			bad[at] ^= 0x20
			var r *CertReport
			if format == "pdf" {
				r = a.VerifyCertificatePDF(bad)
			} else if r, err = a.VerifyCertificateOFD(bad); err != nil {
				continue // no longer a zip: refused as not an OFD, which is a failure too
			}
			if r.Valid || len(r.Failed()) == 0 {
				t.Errorf("%s: byte %d changed and the report is valid: %+v", format, at, r.Checks)
			}
		}
	}
}

// rezip rewrites one entry of a zip.
func rezip(t *testing.T, in []byte, name string, fn func([]byte) []byte) []byte {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := zip.NewWriter(&out)
	for _, f := range z.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if f.Name == name {
			b = fn(b)
		}
		e, _ := w.Create(f.Name)
		e.Write(b)
	}
	w.Close()
	return out.Bytes()
}

func TestCertificateTamperNamesTheCheck(t *testing.T) {
	a := certArchive(t)
	c, err := a.IssueCertificate(t.Context(), issuer, licence())
	if err != nil {
		t.Fatal(err)
	}
	pdf := fetch(t, a, c.Identifier, "pdf")
	// The holder's name in the content stream is compressed; change a byte of the
	// signed part (the page's font program) and a byte after the signature.
	bad := append([]byte(nil), pdf...)
	bad[2000] ^= 0x01
	r := a.VerifyCertificatePDF(bad)
	if got := r.Failed(); len(got) == 0 || got[0] != CheckDocument {
		t.Errorf("a changed signed byte: failed %v", got)
	}
	appended := append(append([]byte(nil), pdf...), "\n% appended\n"...)
	r = a.VerifyCertificatePDF(appended)
	if d, _ := check(r, CheckChanges); d.Status != eep.Fail || !strings.Contains(d.Detail, "outside every revision") || r.Valid {
		t.Errorf("bytes appended after the signature: %+v", r.Checks)
	}

	// The OFD's page changed: that reference fails by name.
	ofdFile := fetch(t, a, c.Identifier, "ofd")
	changed := rezip(t, ofdFile, "Doc_0/Pages/Page_0/Content.xml", func(b []byte) []byte {
		return bytes.Replace(b, []byte("张喆小吃店"), []byte("李四小吃店"), 1)
	})
	r, err = a.VerifyCertificateOFD(changed)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ch := range r.Checks {
		if ch.Check == CheckDocument && ch.Status == eep.Fail && ch.Where == "/Doc_0/Pages/Page_0/Content.xml" {
			found = true
		}
	}
	if r.Valid || !found {
		t.Errorf("a changed page is not named: %+v", r.Checks)
	}
}

func TestCertificateRevokeAndUpdate(t *testing.T) {
	a := certArchive(t)
	c, err := a.IssueCertificate(t.Context(), issuer, licence())
	if err != nil {
		t.Fatal(err)
	}
	// Update: version 002, the old one superseded.
	req := licence()
	req.Fields = append(req.Fields, certdoc.Field{Name: "备注", Value: "变更经营场所"})
	v2, err := a.UpdateCertificate(t.Context(), issuer, c.Identifier, req)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.Supersedes != c.Identifier || !strings.Contains(v2.Identifier, ".002.") {
		t.Fatalf("v2 %+v", v2)
	}
	old := a.VerifyCertificatePDF(fetch(t, a, c.Identifier, "pdf"))
	if st, _ := check(old, CheckStatus); old.Valid || st.Found != CertSuperseded || !strings.Contains(st.Detail, v2.Identifier) {
		t.Errorf("the old version: %+v", st)
	}
	if _, err := a.UpdateCertificate(t.Context(), issuer, c.Identifier, req); !errors.Is(err, ErrState) {
		t.Errorf("updating a superseded version: %v", err)
	}

	// Revoke: the report says revoked, with the reason and time.
	other := Principal{Role: RoleIssuer, Org: "91110108MA01A2B3CF"}
	if _, err := a.RevokeCertificate(t.Context(), other, v2.Identifier, "03", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another department revoked: %v", err)
	}
	if _, err := a.RevokeCertificate(t.Context(), issuer, v2.Identifier, "99", "x"); err == nil {
		t.Error("an unknown revocation code was taken")
	}
	if _, err := a.RevokeCertificate(t.Context(), issuer, v2.Identifier, "07", "违法经营，依法吊销"); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"pdf", "ofd"} {
		rep := verifyFile(t, a, format, fetch(t, a, v2.Identifier, format))
		st, _ := check(rep, CheckStatus)
		if rep.Valid || st.Found != CertRevoked || !strings.Contains(st.Detail, "违法经营") || rep.Certificate.RevokedAt == nil {
			t.Errorf("%s after revocation: %+v", format, st)
		}
		if sig, _ := check(rep, CheckSignature); sig.Status != eep.Pass {
			t.Errorf("%s: the signature itself still verifies: %+v", format, sig)
		}
	}
	if rep := a.VerifyIdentifier(v2.Identifier); rep.Valid || rep.Certificate.Status != CertRevoked {
		t.Errorf("identifier after revocation: %+v", rep)
	}

	// The signed revocation list names both.
	s, err := a.Revocations()
	if err != nil {
		t.Fatal(err)
	}
	var list RevocationList
	if _, err := s.Verify(a.Trust(), time.Now(), &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range list.Entries {
		got[e.Identifier] = e.Status + "/" + e.StatusCode
	}
	if got[c.Identifier] != "superseded/05" || got[v2.Identifier] != "revoked/07" || len(got) != 2 {
		t.Errorf("revocation list %v", got)
	}
}

func TestCertificateRequestsAreChecked(t *testing.T) {
	a := certArchive(t)
	req := licence()
	req.TypeCode, req.Holder.CodeType, req.ValidUntil = "short", "999", "2020-01-01"
	_, err := a.IssueCertificate(t.Context(), issuer, req)
	for _, field := range []string{"type_code", "holder.code_type", "valid_until"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("%s not named in %v", field, err)
		}
	}
	req = licence()
	req.Holder.Name = "店\U0001F600"
	if _, err := a.IssueCertificate(t.Context(), issuer, req); !errors.Is(err, ErrInvalidCase) {
		t.Errorf("an unprintable name: %v", err)
	}
	if _, err := a.IssueCertificate(t.Context(), Principal{Role: RoleDepartment, Org: issuerUSCC}, licence()); !errors.Is(err, ErrForbidden) {
		t.Errorf("a department token issued: %v", err)
	}
	req = licence()
	req.Fields = append(req.Fields, certdoc.Field{Name: "备注", Value: strings.Repeat("很长的说明文字", 28)},
		certdoc.Field{Name: "备注二", Value: strings.Repeat("很长的说明文字", 28)}, certdoc.Field{Name: "备注三", Value: strings.Repeat("很长的说明文字", 28)})
	if _, err := a.IssueCertificate(t.Context(), issuer, req); !errors.Is(err, ErrInvalidCase) || !strings.Contains(err.Error(), "one page") {
		t.Errorf("data that does not fit: %v", err)
	}
	if n, _ := a.Certificates(Principal{Role: RoleArchive}, CertificateFilter{}); len(n) != 0 {
		t.Errorf("refused requests left %d certificates", len(n))
	}
	// Refused requests took no serial: the first certificate is number 1 of the year.
	c, err := a.IssueCertificate(t.Context(), issuer, licence())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Identifier, "."+strconv.Itoa(time.Now().In(eep.CST()).Year())+"0000001.") {
		t.Errorf("refused requests used serials: %s", c.Identifier)
	}
}

// The signed OFDs of the corpus, made by other systems, verify without errors: every
// reference is listed with its outcome and the signers are reported as not trusted.
func TestCorpusOFDSignatures(t *testing.T) {
	a := certArchive(t)
	for _, name := range []string{"SESV4SignDoc.ofd", "v4signed.ofd", "DigitalSign.ofd"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "shared", "corpus", "ofd", name))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := a.VerifyCertificateOFD(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		refs := 0
		for _, c := range rep.Checks {
			if c.Check == CheckDocument && c.Status != eep.Pass {
				t.Errorf("%s: the unchanged file is reported changed: %+v", name, c)
			}
			if c.Check == CheckDocument && strings.HasPrefix(c.Where, "/") {
				refs++
			}
		}
		if refs < 4 {
			t.Errorf("%s: %d references reported", name, refs)
		}
		signer, _ := check(rep, CheckSigner)
		if rep.Valid || signer.Status != eep.Fail {
			t.Errorf("%s: an untrusted signer passed: %+v", name, rep.Checks)
		}
		if name != "DigitalSign.ofd" {
			if sig, _ := check(rep, CheckSignature); sig.Status != eep.Pass || !strings.Contains(signer.Detail, "mathematically valid") {
				t.Errorf("%s: signature %+v, signer %+v", name, sig, signer)
			}
		}
		for _, c := range rep.Checks {
			if c.Status == eep.Fail {
				t.Logf("%s: %+v", name, c)
			}
		}
	}
}

// The index is derived: with index.db gone, reopening restores every certificate from its
// stored entry and the event log, revocations and supersessions included.
func TestCertificatesSurviveAnIndexRebuild(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := a.IssueCertificate(t.Context(), issuer, licence())
	if err != nil {
		t.Fatal(err)
	}
	v2, err := a.UpdateCertificate(t.Context(), issuer, v1.Identifier, licence())
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.IssueCertificate(t.Context(), issuer, licence())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeCertificate(t.Context(), issuer, other.Identifier, "04", "主体注销"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	b, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := map[string]string{v1.Identifier: CertSuperseded, v2.Identifier: CertValid, other.Identifier: CertRevoked}
	for id, st := range want {
		c, err := b.Certificate(Principal{Role: RoleArchive}, id)
		if err != nil {
			t.Fatalf("%s not restored: %v", id, err)
		}
		if c.Status != st || c.PDFSignedSM3 == "" {
			t.Errorf("%s: status %s, want %s", id, c.Status, st)
		}
	}
	if c, _ := b.Certificate(Principal{Role: RoleArchive}, other.Identifier); c.Reason != "主体注销" || c.RevokeCode != "04" || c.RevokedAt == nil {
		t.Errorf("revocation not restored: %+v", c)
	}
	if rep := b.VerifyCertificatePDF(fetch(t, b, v2.Identifier, "pdf")); !rep.Valid {
		t.Errorf("the current version does not verify after the rebuild: %v", rep.Failed())
	}
	// New serials continue after the restored ones.
	next, err := b.IssueCertificate(t.Context(), issuer, licence())
	if err != nil {
		t.Fatal(err)
	}
	if next.Identifier == other.Identifier || next.Identifier == v1.Identifier {
		t.Fatalf("an identifier was issued twice: %s", next.Identifier)
	}
}

// BenchmarkVerifyCertificate is the public verifier's hot path for an issued PDF and OFD.
func BenchmarkVerifyCertificate(b *testing.B) {
	a, err := Open(Config{DataDir: b.TempDir(), Logger: quiet(), NoBackgroundAudit: true, NoConverters: true})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	c, err := a.IssueCertificate(b.Context(), issuer, licence())
	if err != nil {
		b.Fatal(err)
	}
	for _, format := range []string{"pdf", "ofd"} {
		rc, _, err := a.CertificateFile(b.Context(), Principal{Role: RoleArchive}, c.Identifier, format)
		if err != nil {
			b.Fatal(err)
		}
		doc, _ := io.ReadAll(rc)
		rc.Close()
		b.Run(format, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				var valid bool
				if format == "pdf" {
					valid = a.VerifyCertificatePDF(doc).Valid
				} else {
					rep, _ := a.VerifyCertificateOFD(doc)
					valid = rep != nil && rep.Valid
				}
				if !valid {
					b.Fatal("the issued certificate does not verify")
				}
			}
		})
	}
}
