package pdfa

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/dangan-archive/dangan/internal/testenv"
)

func text(t *testing.T, path string) string {
	out, err := exec.Command(testenv.Tool(t, "pdftotext"), "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", path, err)
	}
	return strings.Join(strings.Fields(string(out)), "")
}

// Every PDF of the shared corpus (made by other tools, most of them not PDF/A) gets a
// rendition that claims PDF/A-2b, opens, keeps the source's text, embeds its fonts and
// carries the Chinese title in both the information dictionary and the XMP.
func TestCorpusPDFsBecomePDFA2b(t *testing.T) {
	testenv.Tool(t, "gs")
	c, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../../shared/corpus/pdf/*.pdf")
	if len(files) == 0 {
		t.Fatal("no corpus PDFs")
	}
	dir := t.TempDir()
	const title = "行政许可决定书（副本）"
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	for _, src := range files {
		name := filepath.Base(src)
		out := filepath.Join(dir, name)
		if err := c.Convert(context.Background(), src, out, title); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		b, _ := os.ReadFile(out)
		if part, confm, _ := Claim(bytes.NewReader(b), int64(len(b))); part != "2" || confm != "B" {
			t.Errorf("%s: claims PDF/A-%s%s", name, part, confm)
		}
		if err := api.Validate(bytes.NewReader(b), conf); err != nil {
			t.Errorf("%s: the rendition does not open: %v", name, err)
		}
		if got, want := text(t, out), text(t, src); !strings.Contains(got, want) {
			t.Errorf("%s: text lost:\nsource %q\nrendition %q", name, want, got)
		}
		info, _ := exec.Command(testenv.Tool(t, "pdfinfo"), out).Output()
		if !strings.Contains(string(info), "Title:           "+title) {
			t.Errorf("%s: information title:\n%s", name, info)
		}
		if !bytes.Contains(b, []byte("<rdf:li xml:lang='x-default'>"+title+"</rdf:li>")) {
			t.Errorf("%s: no XMP dc:title", name)
		}
		fonts, _ := exec.Command(testenv.Tool(t, "pdffonts"), out).Output()
		for _, l := range strings.Split(strings.TrimSpace(string(fonts)), "\n")[2:] {
			if f := strings.Fields(l); len(f) >= 4 && !strings.Contains(l, " yes ") {
				t.Errorf("%s: a font is not embedded: %s", name, l)
			}
		}
	}
}

func TestBrokenPDFIsAClearError(t *testing.T) {
	c, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pdf")
	os.WriteFile(bad, []byte("%PDF-1.7\nnot really\n"), 0o644)
	if err := c.Convert(context.Background(), bad, filepath.Join(dir, "out.pdf"), "x"); err == nil {
		t.Fatal("a broken PDF converted")
	}
	if _, err := os.Stat(filepath.Join(dir, "out.pdf")); err == nil {
		t.Error("a failed conversion left its output")
	}
}

// Ghostscript sometimes writes the trailer's /ID as literal strings of raw bytes; one that
// holds "]" or an escaped ")" is carried whole into the title update's trailer, so the
// rendition still opens and keeps its identifier.
func TestSetTitleKeepsALiteralID(t *testing.T) {
	c, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "r.pdf")
	if err := c.Convert(context.Background(), "../../../shared/corpus/pdf/veraPDF_test_suite_6-6-2-3-1-t07-pass-f.pdf", out, ""); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	i := bytes.LastIndex(b, []byte("/ID"))
	j := i + bytes.IndexByte(b[i:], ']') + 1
	const id = "/ID [(/\t\232e]?5:x\\)Q\\\\W=)(/\t\232e]?5:x\\)Q\\\\W=)]"
	b = append(append(append([]byte{}, b[:i]...), id...), b[j:]...)
	os.WriteFile(out, b, 0o644)
	if err := SetTitle(out, "不动产登记"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(out)
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	if err := api.Validate(bytes.NewReader(b), conf); err != nil {
		t.Fatalf("the updated rendition does not open: %v", err)
	}
	last := b[bytes.LastIndex(b, []byte("trailer")):]
	if !bytes.Contains(last, []byte(id+" /Prev")) {
		t.Errorf("the update's trailer does not carry the identifier whole:\n%q", last)
	}
}

func TestIDEntry(t *testing.T) {
	for _, c := range []struct{ trailer, want string }{
		{"/Size 9 /ID [<84AB><84AB>] /Root 1 0 R", "/ID [<84AB><84AB>]"},
		{"/ID[(a]b)(c\\)]d)]/Root 1 0 R", "/ID[(a]b)(c\\)]d)]"},
		{"/ID [(x(y]z)w)(\\\\)]", "/ID [(x(y]z)w)(\\\\)]"},
		{"/Size 9 /Root 1 0 R", ""},
	} {
		if got, err := idEntry(c.trailer); err != nil || got != c.want {
			t.Errorf("idEntry(%q) = %q, %v; want %q", c.trailer, got, err, c.want)
		}
	}
	for _, bad := range []string{"/ID [(open", "/ID [<AB", "/ID [(a)(b)"} {
		if _, err := idEntry(bad); err == nil {
			t.Errorf("idEntry(%q) accepted an unclosed array", bad)
		}
	}
}
