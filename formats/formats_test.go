package formats

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"golang.org/x/image/tiff"
	"golang.org/x/text/encoding/simplifiedchinese"
)

const corpus = "../../shared/corpus"

func corpusFiles(t *testing.T, sub string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpus, sub, "*."+sub))
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus %s missing (expected beside the checkout as ../shared/corpus): %v", sub, err)
	}
	return files
}

func prepareFile(t *testing.T, path, name string) (*Prepared, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sm3.Sum(data)
	return Prepare(context.Background(), bytes.NewReader(data), sum[:], name, PrepareOptions{NewSink: func() (Sink, error) { return &MemSink{}, nil }, NewHash: sm3.New})
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCorpusOFDAreKeptWithWarnings(t *testing.T) {
	for _, f := range corpusFiles(t, "ofd") {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			p, err := prepareFile(t, f, name)
			if err != nil {
				t.Fatalf("OFD refused: %v", err)
			}
			if p.Rendition.ID.PUID != "ofd" || p.Original != nil {
				t.Fatalf("OFD not kept as is: %+v", p)
			}
			if name == "v4signed.ofd" && !strings.Contains(strings.Join(p.Warnings, ";"), "TPLS/Tpl_0/Content.xml") {
				t.Fatalf("v4signed.ofd's mis-cased template reference was not reported: %v", p.Warnings)
			}
			if (p.Rendition.ID.Version == "OFD-A") != (name == "test-ofda.ofd") {
				t.Fatalf("OFD-A recognition: %s has version %q", name, p.Rendition.ID.Version)
			}
		})
	}
}

func TestCorpusPDFsValidate(t *testing.T) {
	for _, f := range corpusFiles(t, "pdf") {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			p, err := prepareFile(t, f, name)
			if err != nil {
				// A refusal must be a classified one (4xx at the API), never an internal error.
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrEncrypted) {
					t.Fatalf("unclassified error: %v", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if p.Rendition.ID.Family() != "pdf" || p.Original != nil {
				t.Fatalf("PDF not kept: %+v", p.Rendition.ID)
			}
		})
	}
}

func TestEncryptedAndTruncatedPDFsAreRefused(t *testing.T) {
	src := filepath.Join(corpus, "pdf", "veraPDF_test_suite_6-2-5-t03-pass-a.pdf")
	dir := t.TempDir()
	enc := filepath.Join(dir, "enc.pdf")
	conf := model.NewAESConfiguration("user", "owner", 256)
	if err := api.EncryptFile(src, enc, conf); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareFile(t, enc, "enc.pdf"); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("encrypted PDF: %v", err)
	}
	// Encrypted with an empty user password: opens without one, still refused (GD-3-8).
	enc2 := filepath.Join(dir, "enc2.pdf")
	if err := api.EncryptFile(src, enc2, model.NewAESConfiguration("", "owner", 256)); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareFile(t, enc2, "enc2.pdf"); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("PDF encrypted with an empty user password: %v", err)
	}
	data, _ := os.ReadFile(src)
	cut := writeTemp(t, "cut.pdf", data[:len(data)*2/3])
	if _, err := prepareFile(t, cut, "cut.pdf"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("truncated PDF: %v", err)
	}
}

func testJPEG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 200, 280))
	for y := 0; y < 280; y++ {
		for x := 0; x < 200; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestScansBecomePDFAndKeepTheOriginal(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 100, 140))
	var pngBuf, tiffBuf bytes.Buffer
	png.Encode(&pngBuf, img)
	if err := tiff.Encode(&tiffBuf, img, nil); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"scan.jpg": testJPEG(t), "scan.png": pngBuf.Bytes(), "scan.tif": tiffBuf.Bytes()} {
		p, err := prepareFile(t, writeTemp(t, name, data), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Rendition.ID.Family() != "pdf" || p.Original == nil || p.Original.ID.Family() != "image" {
			t.Fatalf("%s: rendition %+v original %+v", name, p.Rendition.ID, p.Original)
		}
		// The rendition's identification, by header, is what siegfried says of it.
		if sf, err := Identify(p.Rendition.Src, p.Rendition.Size, "x.pdf"); err != nil || sf != p.Rendition.ID {
			t.Fatalf("%s: rendition identified as %+v, siegfried says %+v (%v)", name, p.Rendition.ID, sf, err)
		}
		if !strings.HasSuffix(p.Rendition.Name, ".pdf") || p.Tool == "" {
			t.Fatalf("%s: rendition name %q tool %q", name, p.Rendition.Name, p.Tool)
		}
		if _, err := ValidatePDF(p.Rendition.Src, p.Rendition.Size); err != nil {
			t.Fatalf("%s: rendition does not validate: %v", name, err)
		}
		got, _ := io.ReadAll(p.Rendition.Open())
		if sum := sm3.Sum(got); !bytes.Equal(sum[:], p.Rendition.SM3) || int64(len(got)) != p.Rendition.Size {
			t.Fatalf("%s: recorded digest or size of the rendition is wrong", name)
		}
	}
}

func TestJSONFormBecomesCanonicalXML(t *testing.T) {
	var out bytes.Buffer
	in := `{"申请人":"张三 & <李四>","金额":12.50,"材料":["a",true,null],"z":{},"a":1}`
	if err := JSONToXML(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := `<map xmlns="http://www.w3.org/2005/xpath-functions"><string key="申请人">张三 &amp; &lt;李四&gt;</string>` +
		`<number key="金额">12.50</number><array key="材料"><string>a</string><boolean>true</boolean><null></null></array>` +
		`<map key="z"></map><number key="a">1</number></map>`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	// A control character JSON allows and XML 1.0 does not: written escaped, as the W3C
	// mapping's escape option does, so the rendition is well-formed and nothing is lost.
	out.Reset()
	if err := JSONToXML(strings.NewReader(`{"备注\u0002":"a\u0001b\\c","ok":"d\\e"}`), &out); err != nil {
		t.Fatal(err)
	}
	want = `<map xmlns="http://www.w3.org/2005/xpath-functions"><string escaped="true" escaped-key="true" key="备注\u0002">a\u0001b\\c</string>` +
		`<string key="ok">d\e</string></map>`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	if err := xml.Unmarshal(out.Bytes(), new(struct{})); err != nil {
		t.Fatalf("the escaped rendition is not well-formed XML: %v", err)
	}
	for _, bad := range []string{`{"a":}`, `{"a":1} {"b":2}`, `{"a":1`} {
		if err := JSONToXML(strings.NewReader(bad), &bytes.Buffer{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	p, err := prepareFile(t, writeTemp(t, "form.json", []byte(in)), "form.json")
	if err != nil || p.Rendition.ID.Family() != "xml" || p.Original.ID.PUID != "fmt/817" {
		t.Fatalf("JSON policy: %+v %v", p, err)
	}
}

func TestXMLFormCanonicalisedIncludingGBK(t *testing.T) {
	gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(`<?xml version="1.0" encoding="GBK"?><表单 b="2" a="1"><项>张三</项><空/></表单>`))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := CanonicalXML(bytes.NewReader(gbk), int64(len(gbk)), &out); err != nil {
		t.Fatal(err)
	}
	if want := `<表单 a="1" b="2"><项>张三</项><空></空></表单>`; out.String() != want {
		t.Fatalf("got %s want %s", out.String(), want)
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty.pdf", nil, ErrEmpty},
		{"notes.txt", []byte("plain text is not an archival format here\n"), ErrUnsupported},
		{"scan.pdf", testJPEG(t), ErrMislabelled},
		{"report.ofd", []byte("%PDF-1.4\n"), ErrMislabelled},
		{"bad.json", []byte(`{"x": [1, 2`), ErrInvalid},
		{"broken.xml", []byte(`<a><b></a>`), ErrInvalid},
	}
	for _, c := range cases {
		_, err := prepareFile(t, writeTemp(t, "f", c.data), c.name)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// Without LibreOffice, text is refused with the packages to install.
	_, err := prepareFile(t, writeTemp(t, "f", []byte("plain text")), "notes.txt")
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "libreoffice-writer-nogui") {
		t.Fatalf("415 detail does not say what to install: %v", err)
	}
	// A format no rule accepts: the detail lists what is accepted.
	_, err = prepareFile(t, writeTemp(t, "f", []byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff")), "tool.exe")
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "accepted: PDF/A; PDF; OFD") {
		t.Fatalf("415 detail does not list what is accepted: %v", err)
	}
}
