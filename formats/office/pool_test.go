package office

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/formats/pdfa"
	"github.com/dangan-archive/dangan/internal/testenv"
)

const chinese = "电子档案长期保存测试：某县市场监督管理局"

// corpus makes the documents a county sees, in the test: text, CSV and HTML written here,
// and DOCX, ODT, RTF, DOC, XLSX, ODS and XLS written from them by LibreOffice itself.
func corpus(t *testing.T, soffice string) map[string]Options {
	t.Helper()
	corpusOnce.Do(func() { corpusDocs, corpusErr = makeCorpus(soffice) })
	if corpusErr != nil {
		t.Fatal(corpusErr)
	}
	// Each test converts copies, so outputs never collide.
	dir := t.TempDir()
	out := map[string]Options{}
	for in, opts := range corpusDocs {
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, filepath.Base(in))
		os.WriteFile(cp, b, 0o644)
		out[cp] = opts
	}
	return out
}

var (
	corpusOnce sync.Once
	corpusDocs map[string]Options
	corpusErr  error
	corpusDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if corpusDir != "" {
		os.RemoveAll(corpusDir)
	}
	os.Exit(code)
}

func makeCorpus(soffice string) (map[string]Options, error) {
	dir, err := os.MkdirTemp("", "dangan-office-corpus-")
	if err != nil {
		return nil, err
	}
	corpusDir = dir
	var failed error
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil && failed == nil {
			failed = err
		}
	}
	write("note.txt", chinese+"\n第二段：行政许可决定书。\n")
	write("table.csv", "事项,数量\n"+chinese+",3\n")
	write("page.html", `<!DOCTYPE html><html><head><meta charset="utf-8"><title>办件页面</title></head><body><h1>`+chinese+`</h1><p>办结意见：准予许可。</p></body></html>`)
	profile := filepath.Join(dir, "profile")
	conv := func(src, to string) {
		infilter := "--infilter=Text (encoded):UTF8,LF,,,"
		if strings.HasSuffix(src, ".csv") {
			infilter = "--infilter=CSV:44,34,76,1"
		}
		cmd := exec.Command(soffice, "--headless", "-env:UserInstallation=file://"+profile, infilter, "--convert-to", to, "--outdir", dir, filepath.Join(dir, src))
		if out, err := cmd.CombinedOutput(); err != nil && failed == nil {
			failed = fmt.Errorf("make the corpus: soffice --convert-to %s %s: %v\n%s", to, src, err, out)
		}
	}
	conv("note.txt", "docx")
	conv("note.txt", "odt")
	conv("note.txt", "rtf")
	conv("note.txt", "doc")
	conv("table.csv", "xlsx")
	conv("table.csv", "ods")
	conv("table.csv", "xls")
	out := map[string]Options{}
	for _, n := range []string{"note.docx", "note.odt", "note.rtf", "note.doc", "table.xlsx", "table.ods", "table.xls", "page.html"} {
		out[filepath.Join(dir, n)] = Options{Title: "测试文档 " + n}
	}
	out[filepath.Join(dir, "note.txt")] = Options{Title: "纯文本", Kind: "txt"}
	out[filepath.Join(dir, "table.csv")] = Options{Title: "表格", Kind: "csv"}
	return out, failed
}

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	testenv.Tool(t, "soffice")
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Every kind converts to a PDF/A-2b whose text is the source's Chinese and whose fonts
// are all embedded.
func TestEveryKindConvertsToPDFA2b(t *testing.T) {
	p := newPool(t, Config{Workers: 2})
	docs := corpus(t, p.cfg.Soffice)
	var wg sync.WaitGroup
	for in, opts := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := in + ".pdf"
			if err := p.Convert(context.Background(), in, out, opts); err != nil {
				t.Errorf("%s: %v", filepath.Base(in), err)
				return
			}
			checkPDFA(t, out, chinese, opts.Title)
		}()
	}
	wg.Wait()
	if p.Version() == "" || !strings.HasPrefix(p.Version(), "LibreOffice") {
		t.Errorf("version %q", p.Version())
	}
}

func checkPDFA(t *testing.T, path, text, title string) {
	t.Helper()
	name := filepath.Base(path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	part, conf, err := pdfa.Claim(bytes.NewReader(b), int64(len(b)))
	if err != nil || part != "2" || conf != "B" {
		t.Errorf("%s: claims PDF/A-%s%s (%v), want 2B", name, part, conf, err)
	}
	got, err := exec.Command(testenv.Tool(t, "pdftotext"), "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil || !strings.Contains(strings.Join(strings.Fields(string(got)), ""), strings.Join(strings.Fields(text), "")) {
		t.Errorf("%s: pdftotext does not return the Chinese text (%v):\n%s", name, err, got)
	}
	fonts, err := exec.Command(testenv.Tool(t, "pdffonts"), path).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(fonts)), "\n")
	if err != nil || len(lines) < 3 {
		t.Errorf("%s: pdffonts: %v\n%s", name, err, fonts)
	}
	for _, l := range lines[2:] {
		if f := strings.Fields(l); len(f) < 5 || !strings.Contains(l, " yes ") || strings.Contains(l, " no  ") && strings.Index(l, " no ") < strings.Index(l, " yes ") {
			t.Errorf("%s: a font is not embedded: %s", name, l)
		}
	}
	if title != "" {
		info, _ := exec.Command(testenv.Tool(t, "pdfinfo"), path).CombinedOutput()
		if !strings.Contains(string(info), title) {
			t.Errorf("%s: the title %q is not in the document info:\n%s", name, title, info)
		}
	}
}

// endlessHTML writes an HTML export LibreOffice takes minutes over: a 60,000-row table.
func endlessHTML(t *testing.T, dir string) string {
	var b strings.Builder
	b.WriteString(`<html><head><meta charset="utf-8"></head><body><table>`)
	for i := range 60000 {
		fmt.Fprintf(&b, "<tr><td>第%d行 电子档案</td><td>%d</td><td>某县市场监督管理局</td></tr>", i, i)
	}
	b.WriteString("</table></body></html>")
	path := filepath.Join(dir, "endless.html")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A document that does not finish fails within the timeout; the other conversions in
// flight succeed, and the pool recovers.
func TestAHangFailsAloneAndThePoolRecovers(t *testing.T) {
	p := newPool(t, Config{Workers: 2, Timeout: 8 * time.Second})
	docs := corpus(t, p.cfg.Soffice)
	dir := t.TempDir()
	endless := endlessHTML(t, dir)
	var wg sync.WaitGroup
	start := time.Now()
	var hangErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		hangErr = p.Convert(context.Background(), endless, filepath.Join(dir, "endless.pdf"), Options{})
	}()
	time.Sleep(500 * time.Millisecond)
	for in, opts := range docs {
		if err := p.Convert(context.Background(), in, in+".pdf", opts); err != nil {
			t.Errorf("%s while another hangs: %v", filepath.Base(in), err)
		}
	}
	wg.Wait()
	if !errors.Is(hangErr, ErrTimeout) || time.Since(start) > 30*time.Second {
		t.Fatalf("the hang: %v after %s", hangErr, time.Since(start))
	}
	if p.Replaced.Load() != 1 {
		t.Errorf("%d workers replaced, want 1", p.Replaced.Load())
	}
	// Afterwards both workers convert again.
	for in, opts := range docs {
		if err := p.Convert(context.Background(), in, in+".again.pdf", opts); err != nil {
			t.Errorf("after the hang: %s: %v", filepath.Base(in), err)
		}
		break
	}
}

func TestUnreadableFileIsAClearError(t *testing.T) {
	p := newPool(t, Config{Workers: 1})
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.docx")
	os.WriteFile(bad, []byte("PK\x03\x04 this is not a document"), 0o644)
	err := p.Convert(context.Background(), bad, filepath.Join(dir, "out.pdf"), Options{})
	// A document LibreOffice cannot read is that document's error; the worker stays.
	if !errors.Is(err, ErrConvert) || p.Replaced.Load() != 0 {
		t.Fatalf("a broken DOCX: %v (workers replaced: %d)", err, p.Replaced.Load())
	}
}

func TestMemoryLimit(t *testing.T) {
	// 64 MiB is below what LibreOffice needs at all: the first check during the long
	// conversion stops it.
	p := newPool(t, Config{Workers: 1, MaxRSS: 64 << 20, Timeout: time.Minute})
	dir := t.TempDir()
	start := time.Now()
	err := p.Convert(context.Background(), endlessHTML(t, dir), filepath.Join(dir, "out.pdf"), Options{})
	if !errors.Is(err, ErrMemory) || time.Since(start) > 20*time.Second {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
	if p.Workers() != 0 {
		t.Errorf("the worker over the limit is still there")
	}
}
