package ofd

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parts() []Part {
	return []Part{
		{Name: "OFD.xml", Data: []byte(`<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="` + NS + `" Version="1.1" DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>1</ofd:DocID></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>`)},
		{Name: "Doc_0/Document.xml", Data: []byte(`<ofd:Document xmlns:ofd="` + NS + `"/>`)},
		{Name: "Doc_0/Pages/Page_0/Content.xml", Data: []byte(`<ofd:Page xmlns:ofd="` + NS + `"/>`)},
	}
}

func zipOf(t *testing.T, ps []Part) *zip.Reader {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, ps); err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestSealAndReadBack(t *testing.T) {
	var signedHash []byte
	sealed, err := Seal(parts(), SealOptions{Provider: "dangan", Version: "1", Time: time.Now(), PageID: "1", Boundary: [4]float64{1, 2, 3, 4},
		SealEntry: []byte("seal"), Sign: func(h []byte, prop string) ([]byte, error) {
			signedHash = h
			if prop != "/Doc_0/Signs/Sign_0/Signature.xml" {
				t.Errorf("property %q", prop)
			}
			return []byte("value"), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := ReadSignatures(zipOf(t, sealed))
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 {
		t.Fatalf("%d signatures", len(sigs))
	}
	s := sigs[0]
	if s.Type != "Seal" || string(s.SignedValue) != "value" || string(s.SealFile) != "seal" || len(s.Problems) > 0 || len(s.Unreferenced) > 0 {
		t.Fatalf("%+v", s)
	}
	if len(s.References) != 4 { // OFD.xml, Document.xml, Content.xml, Seal.esl
		t.Fatalf("%d references", len(s.References))
	}
	for _, r := range s.References {
		if !r.Match {
			t.Errorf("%s does not match", r.File)
		}
	}
	if len(signedHash) != 32 {
		t.Fatal("no SM3 handed to Sign")
	}

	// A changed page and an added file are both reported.
	for i := range sealed {
		if sealed[i].Name == "Doc_0/Pages/Page_0/Content.xml" {
			sealed[i].Data = []byte(`<ofd:Page xmlns:ofd="` + NS + `">changed</ofd:Page>`)
		}
	}
	sealed = append(sealed, Part{Name: "Doc_0/Res/added.png", Data: []byte("x")})
	s = mustRead(t, sealed)[0]
	mismatched := 0
	for _, r := range s.References {
		if !r.Match {
			mismatched++
			if r.File != "/Doc_0/Pages/Page_0/Content.xml" {
				t.Errorf("%s reported changed", r.File)
			}
		}
	}
	if mismatched != 1 || len(s.Unreferenced) != 1 || s.Unreferenced[0] != "Doc_0/Res/added.png" {
		t.Fatalf("mismatched %d, unreferenced %v", mismatched, s.Unreferenced)
	}
}

func mustRead(t *testing.T, ps []Part) []Signature {
	sigs, err := ReadSignatures(zipOf(t, ps))
	if err != nil {
		t.Fatal(err)
	}
	return sigs
}

func TestReferencesCannotLeaveThePackage(t *testing.T) {
	sealed, _ := Seal(parts(), SealOptions{PageID: "1", Sign: func([]byte, string) ([]byte, error) { return []byte("v"), nil }})
	for i := range sealed {
		if sealed[i].Name == "Doc_0/Signs/Sign_0/Signature.xml" {
			sealed[i].Data = bytes.Replace(sealed[i].Data, []byte(`FileRef="/OFD.xml"`), []byte(`FileRef="../../../../etc/passwd"`), 1)
		}
	}
	s := mustRead(t, sealed)[0]
	for _, r := range s.References {
		if r.File == "../../../../etc/passwd" && (r.Match || r.Problem == "") {
			t.Fatalf("a reference outside the package was read: %+v", r)
		}
	}
}

func TestUnsignedOFD(t *testing.T) {
	if _, err := ReadSignatures(zipOf(t, parts())); !errors.Is(err, ErrNoSignatures) {
		t.Fatalf("err = %v", err)
	}
}

// Every signed file of the corpus reads; the references the other tools wrote match.
func TestCorpus(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/corpus/ofd/*.ofd")
	signed := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sigs, err := ReadSignatures(z)
		if errors.Is(err, ErrNoSignatures) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		signed++
		for _, s := range sigs {
			if len(s.Problems) > 0 || len(s.SignedValue) == 0 {
				t.Errorf("%s: %v", f, s.Problems)
			}
			for _, r := range s.References {
				if !r.Match {
					t.Errorf("%s: %s: %s", f, r.File, r.Problem)
				}
			}
		}
	}
	if signed != 3 {
		t.Errorf("%d signed corpus files, want 3", signed)
	}
}

// A small package whose referenced file inflates to more than a verifier will hash is
// answered at once, naming the file, instead of inflating it.
func TestInflationBombIsRefused(t *testing.T) {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	add := func(name, body string) {
		w, _ := z.Create(name)
		io.WriteString(w, body)
	}
	add("OFD.xml", `<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot><ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>`)
	add("Doc_0/Document.xml", `<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"/>`)
	add("Doc_0/Signs/Signatures.xml", `<ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Signature ID="1" BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>`)
	add("Doc_0/Signs/Sign_0/Signature.xml", `<ofd:Signature xmlns:ofd="http://www.ofdspec.org/2016"><ofd:SignedInfo><ofd:References CheckMethod="1.2.156.10197.1.401">`+
		`<ofd:Reference FileRef="/Doc_0/bomb.bin"><ofd:CheckValue>AAAA</ofd:CheckValue></ofd:Reference></ofd:References></ofd:SignedInfo><ofd:SignedValue>SignedValue.dat</ofd:SignedValue></ofd:Signature>`)
	add("Doc_0/Signs/Sign_0/SignedValue.dat", "x")
	w, _ := z.Create("Doc_0/bomb.bin")
	zeros := make([]byte, 1<<20)
	for range 80 { // 80 MiB of zeros, a few hundred KB compressed
		w.Write(zeros)
	}
	z.Close()
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sigs, err := ReadSignatures(zr)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v", took)
	}
	if len(sigs) != 1 || len(sigs[0].References) != 1 || !strings.Contains(sigs[0].References[0].Problem, "larger than this verifier inflates") {
		t.Fatalf("%+v", sigs)
	}
	t.Logf("%d-byte package refused", buf.Len())
}
