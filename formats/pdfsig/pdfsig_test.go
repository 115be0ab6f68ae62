package pdfsig

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A minimal one-page PDF and where its objects are.
func base(t *testing.T) ([]byte, Base) {
	var w bytes.Buffer
	w.WriteString("%PDF-1.7\n")
	offs := []int{}
	for _, o := range []string{"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"} {
		offs = append(offs, w.Len())
		w.WriteString(strconv.Itoa(len(offs)) + " 0 obj\n" + o + "\nendobj\n")
	}
	x := w.Len()
	w.WriteString("xref\n0 4\n0000000000 65535 f \n")
	for _, o := range offs {
		w.WriteString(strings.Repeat("0", 10-len(strconv.Itoa(o))) + strconv.Itoa(o) + " 00000 n \n")
	}
	w.WriteString("trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n" + strconv.Itoa(x) + "\n%%EOF\n")
	return w.Bytes(), Base{Catalog: 1, Page: 3, CatalogDict: " /Type /Catalog /Pages 2 0 R", PageDict: " /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200]", Size: 4, XrefAt: int64(x)}
}

func TestPrepareFillFind(t *testing.T) {
	doc, b := base(t)
	p, err := Prepare(doc, b, Field{Name: "issuer", Reason: "颁发", Time: time.Unix(0, 0), Reserve: 64})
	if err != nil {
		t.Fatal(err)
	}
	var covered bytes.Buffer
	p.WriteSigned(&covered)
	sum := sha256.Sum256(covered.Bytes())
	signed, err := p.Fill(sum[:])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(signed, doc) {
		t.Fatal("the update is not incremental: the original bytes changed")
	}
	sigs := Find(signed)
	if len(sigs) != 1 {
		t.Fatalf("found %d signatures", len(sigs))
	}
	s := sigs[0]
	if len(s.Problems) > 0 || !s.CoversWhole || s.SubFilter != "adbe.pkcs7.detached" {
		t.Fatalf("%+v", s)
	}
	if !bytes.Equal(s.Contents[:32], sum[:]) || len(s.Contents) != 64 {
		t.Fatal("contents read back differ")
	}
	var again bytes.Buffer
	s.WriteCovered(signed, &again)
	if !bytes.Equal(again.Bytes(), covered.Bytes()) {
		t.Fatal("covered bytes differ between Prepare and Find")
	}
	if _, err := p.Fill(make([]byte, 65)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an oversize CMS: %v", err)
	}

	// Appended after signing: the range no longer covers the file.
	appended := append(append([]byte(nil), signed...), "1 0 obj\n<< >>\nendobj\n"...)
	if Find(appended)[0].CoversWhole {
		t.Error("an update after signing is not reported")
	}
	// A byte range moved off the /Contents string.
	old := fmt.Sprintf("[0 %010d ", s.ByteRange[1])
	moved := bytes.Replace(signed, []byte(old), []byte(fmt.Sprintf("[0 %010d ", s.ByteRange[1]-1)), 1)
	if got := Find(moved)[0]; len(got.Problems) == 0 {
		t.Errorf("a shifted byte range is not reported: %+v", got)
	}
}

func TestFindOnForeignPDFs(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/corpus/pdf/*.pdf")
	if len(files) == 0 {
		t.Fatal("no corpus PDFs")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if sigs := Find(b); len(sigs) != 0 { // the corpus PDFs are unsigned
			t.Errorf("%s: %d signatures found in an unsigned file", f, len(sigs))
		}
	}
}

func TestTextString(t *testing.T) {
	if got := TextString("a(b)"); got != `(a\(b\))` {
		t.Error(got)
	}
	if got := TextString("证"); got != "<FEFF8BC1>" {
		t.Error(got)
	}
}

// Inspect on real files: each signature's revision, and whether what came after it is of
// the kinds an approval signature allows.
func TestInspectRevisionsAndChanges(t *testing.T) {
	for _, tc := range []struct {
		file      string
		revisions []int // each signature's revision
		total     int
		permitted []bool
		problem   bool // the first signature's byte range is refused
	}{
		{"pdf-rsa-four-sigs-mdp.pdf", []int{2, 3, 4, 5}, 5, []bool{true, true, true, true}, false},
		{"pdf-rsa-nodesignpdf-signed-twice.pdf", []int{2, 3}, 3, []bool{true, true}, false},
		{"pdf-rsa-shadow-attack-hide-replace.pdf", []int{2}, 3, []bool{false}, false},
		{"pdf-rsa-acrobat.pdf", []int{1}, 1, []bool{true}, false}, // linearized: its first-page section is not a revision
		{"pdf-ecdsa-plain-rs-wrong-oid.pdf", []int{3}, 3, []bool{true}, false},
		{"pdf-byterange-two-contents.pdf", []int{1}, 1, []bool{true}, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("../../../shared/corpus/signed", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			d := Inspect(doc)
			if d.Revisions != tc.total || len(d.Signatures) != len(tc.revisions) {
				t.Fatalf("%d revisions, %d signatures", d.Revisions, len(d.Signatures))
			}
			for i, s := range d.Signatures {
				if s.Revision != tc.revisions[i] || s.Permitted != tc.permitted[i] {
					t.Errorf("signature %d: revision %d permitted %v, changes %+v", i+1, s.Revision, s.Permitted, s.Changes)
				}
			}
			if (len(d.Signatures[0].Problems) > 0) != tc.problem {
				t.Errorf("problems %v", d.Signatures[0].Problems)
			}
		})
	}
}
