package archive

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/formats/pdfa"
	"github.com/dangan-archive/dangan/internal/testenv"
)

// uploads sends files as the parts named in order.
func uploads(files map[string][]byte, order []string) func() (*Upload, error) {
	i := 0
	return func() (*Upload, error) {
		if i == len(order) {
			return nil, io.EOF
		}
		name := order[i]
		i++
		return &Upload{Part: name, FileName: name, Body: bytes.NewReader(files[name])}, nil
	}
}

// A case as a county sends it: a Word document, an HTML export, a scan, a born-digital PDF
// and a signed PDF. Each gets the archival copy the policy asks for, the original beside
// it, and the package records how.
func TestIngestConvertsToPDFA(t *testing.T) {
	testenv.Tool(t, "soffice")
	testenv.Tool(t, "gs")
	a := certArchive(t)
	if a.tools.Office == nil || a.tools.PDFA == nil {
		t.Fatal("the archive opened without its converters although LibreOffice and Ghostscript are installed")
	}
	dir := t.TempDir()
	const text = "行政许可决定书：准予食品经营许可"
	os.WriteFile(filepath.Join(dir, "decision.txt"), []byte(text+"\n"), 0o644)
	cmd := exec.Command("soffice", "--headless", "-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--infilter=Text (encoded):UTF8,LF,,,", "--convert-to", "docx", "--outdir", dir, filepath.Join(dir, "decision.txt"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make a DOCX: %v\n%s", err, out)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cert, err := a.IssueCertificate(t.Context(), issuer, licence())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"decision.docx": read(filepath.Join(dir, "decision.docx")),
		"page.html":     []byte(`<html><head><meta charset="utf-8"></head><body><p>` + text + `</p></body></html>`),
		"scan.jpg":      read("../examples/case-001/scan-application.jpg"),
		"born.pdf":      read("../examples/case-001/decision.pdf"),
		"licence.pdf":   fetch(t, a, cert.Identifier, "pdf"),
	}
	order := []string{"decision.docx", "page.html", "scan.jpg", "born.pdf", "licence.pdf"}
	c := benchCaseFor("CONV-1")
	c.Documents = nil
	for i, n := range order {
		c.Documents = append(c.Documents, CaseDoc{File: n, Title: "材料" + string(rune('一'+i)), Main: i == 0})
	}
	res, err := a.Ingest(context.Background(), dept, c, uploads(files, order))
	if err != nil {
		t.Fatal(err)
	}
	docs := res.Package.Documents
	open := func(n, k int) []byte {
		rc, _, err := a.OpenEncoding(context.Background(), Principal{Role: RoleArchive}, res.Package.ID, n, k)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return b
	}
	claims2B := func(b []byte) bool {
		part, conf, _ := pdfa.Claim(bytes.NewReader(b), int64(len(b)))
		return part == "2" && conf == "B"
	}
	for n := 1; n <= 4; n++ { // converted: the rendition is the archival copy, the original second
		d := docs[n-1]
		if len(d.Encoded) != 2 || d.Encoded[0].Original || !d.Encoded[1].Original || d.Encoded[1].FileName != order[n-1] {
			t.Errorf("%s: encodings %+v", order[n-1], d.Encoded)
			continue
		}
		if r := open(n, 1); !claims2B(r) {
			t.Errorf("%s: the archival copy does not claim PDF/A-2b", order[n-1])
		} else if n <= 2 {
			path := filepath.Join(dir, "r.pdf")
			os.WriteFile(path, r, 0o644)
			out, _ := exec.Command(testenv.Tool(t, "pdftotext"), "-enc", "UTF-8", path, "-").Output()
			if !strings.Contains(string(out), text) {
				t.Errorf("%s: the rendition's text is %q", order[n-1], out)
			}
		}
		if !bytes.Equal(open(n, 2), files[order[n-1]]) {
			t.Errorf("%s: the original is not kept byte for byte", order[n-1])
		}
	}
	// The signed certificate is never rewritten: it is the archival copy, the PDF/A
	// rendition beside it, and its signature still verifies from the package.
	d := docs[4]
	if len(d.Encoded) != 2 || !d.Encoded[0].Original || d.Encoded[1].Original {
		t.Fatalf("signed PDF: encodings %+v", d.Encoded)
	}
	if !bytes.Equal(open(5, 1), files["licence.pdf"]) || !claims2B(open(5, 2)) {
		t.Error("signed PDF: the original is not the archival copy, or the rendition is not PDF/A-2b")
	}
	if rep := a.VerifyCertificatePDF(open(5, 1)); !rep.Valid {
		t.Errorf("the archived certificate no longer verifies: %v", rep.Failed())
	}
	// The package says how each rendition was made.
	rc, _, err := a.OpenEEP(context.Background(), Principal{Role: RoleArchive}, res.Package.ID)
	if err != nil {
		t.Fatal(err)
	}
	eepXML, _ := io.ReadAll(rc)
	rc.Close()
	rep, err := Verify(bytes.NewReader(eepXML), int64(len(eepXML)), VerifyOptions{Roots: a.Trust()})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range rep.Findings {
		if f.Code == "GD-3-2" {
			checked++
			if f.Status != "pass" {
				t.Errorf("rendition check: %+v", f)
			}
		}
	}
	if checked != 5 || !rep.Valid {
		t.Errorf("%d renditions checked (want 5), valid %v", checked, rep.Valid)
	}
	for _, want := range []string{"源格式 fmt/412", "→ PDF/A-2b；工具 LibreOffice", "工具 pdfcpu v0.15.0 image import (A4) + Ghostscript", "原件含电子签名，不改写"} {
		if !bytes.Contains(eepXML, []byte(want)) {
			t.Errorf("the package does not record %q", want)
		}
	}
}

// Without the converters, Office formats are refused with what to install and nothing is
// stored; PDFs and scans are still archived, with a warning.
func TestWithoutConverters(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true, NoConverters: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := benchCaseFor("NOCONV-1")
	c.Documents = []CaseDoc{{File: "a.html", Title: "网页", Main: true}}
	_, err = a.Ingest(context.Background(), dept, c, uploads(map[string][]byte{"a.html": []byte("<html><body><p>网页</p></body></html>")}, []string{"a.html"}))
	if !errors.Is(err, formats.ErrUnsupported) || !strings.Contains(err.Error(), "libreoffice-writer-nogui") {
		t.Fatalf("HTML without LibreOffice: %v", err)
	}
	if n, _ := a.Index().Count(); n != 0 {
		t.Fatalf("a refused case left %d packages", n)
	}
	res, err := a.Ingest(context.Background(), dept, benchCaseFor("NOCONV-2"), oneDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	if w := res.Package.Documents[0].Warnings; len(w) == 0 || !strings.Contains(w[0], "ghostscript") {
		t.Errorf("no warning that the PDF has no PDF/A rendition: %v", w)
	}
}

// A rendition that is not PDF/A-2b, or not a PDF, is named.
func TestCheckRenditionRefuses(t *testing.T) {
	plain, err := os.ReadFile("../examples/case-001/decision.pdf")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"plain PDF": plain, "not a PDF": []byte("hello")} {
		enc := base64.StdEncoding.EncodeToString(data)
		err := checkRendition(strings.NewReader(enc), eep.ScannedEncoding{DataOffset: 0, DataLength: int64(len(enc))})
		if err == nil {
			t.Errorf("%s passed as a PDF/A-2b rendition", name)
		}
	}
}

// An HTML export LibreOffice does not finish fails that case within the timeout as a
// document that cannot be converted (422); nothing is stored, and the next case converts.
func TestAConversionThatHangsFailsTheCaseAlone(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true, ConvertTimeout: 4 * time.Second, OfficeWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var b strings.Builder
	b.WriteString(`<html><head><meta charset="utf-8"></head><body><table>`)
	for i := range 60000 {
		fmt.Fprintf(&b, "<tr><td>第%d行</td><td>某县市场监督管理局</td></tr>", i)
	}
	b.WriteString("</table></body></html>")
	c := benchCaseFor("HANG-1")
	c.Documents = []CaseDoc{{File: "export.html", Title: "导出", Main: true}}
	start := time.Now()
	_, err = a.Ingest(context.Background(), dept, c, uploads(map[string][]byte{"export.html": []byte(b.String())}, []string{"export.html"}))
	if !errors.Is(err, formats.ErrInvalid) || !strings.Contains(err.Error(), "took too long") || time.Since(start) > 30*time.Second {
		t.Fatalf("the hanging export: %v after %s", err, time.Since(start))
	}
	if n, _ := a.Index().Count(); n != 0 {
		t.Fatalf("the failed case left %d packages", n)
	}
	c = benchCaseFor("HANG-2")
	c.Documents = []CaseDoc{{File: "page.html", Title: "网页", Main: true}}
	if _, err := a.Ingest(context.Background(), dept, c, uploads(map[string][]byte{"page.html": []byte(`<html><body><p>网页</p></body></html>`)}, []string{"page.html"})); err != nil {
		t.Fatalf("after the hang: %v", err)
	}
}
