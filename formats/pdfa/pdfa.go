// Package pdfa makes PDF/A-2b renditions of PDFs with Ghostscript and sets their title in
// both the document information and the XMP metadata, which Ghostscript drops when it is
// not ASCII (a Chinese title, in a county archive, nearly always).
//
//	c, err := pdfa.Find()                                    // ErrUnavailable: no Ghostscript
//	err = c.Convert(ctx, "scan.pdf", "scan-a.pdf", "营业执照申请表")
package pdfa

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dangan-archive/dangan/formats/pdfsig"
)

// ErrUnavailable is returned when Ghostscript is not installed.
var ErrUnavailable = errors.New("ghostscript is not installed: install the Debian package ghostscript")

// ErrConvert is returned (wrapped) when Ghostscript cannot make the rendition.
var ErrConvert = errors.New("ghostscript could not make a PDF/A-2b rendition")

// Converter runs Ghostscript.
type Converter struct {
	gs      string
	icc     string
	version string
	Timeout time.Duration // per document; default 120 s
}

var (
	findOnce sync.Once
	found    Converter
	findErr  error
)

// Find locates Ghostscript and its sRGB output profile (once per process).
func Find() (*Converter, error) {
	findOnce.Do(func() {
		var c *Converter
		if c, findErr = find(); c != nil {
			found = *c
		}
	})
	if findErr != nil {
		return nil, findErr
	}
	c := found
	return &c, nil
}

func find() (*Converter, error) {
	gs, err := exec.LookPath("gs")
	if err != nil {
		return nil, ErrUnavailable
	}
	out, err := exec.Command(gs, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%w (gs --version: %v)", ErrUnavailable, err)
	}
	icc, _ := filepath.Glob("/usr/share/ghostscript/*/iccprofiles/default_rgb.icc")
	if len(icc) == 0 {
		if icc, _ = filepath.Glob("/usr/share/ghostscript/*/iccprofiles/srgb.icc"); len(icc) == 0 {
			return nil, fmt.Errorf("%w (no sRGB ICC profile under /usr/share/ghostscript)", ErrUnavailable)
		}
	}
	return &Converter{gs: gs, icc: icc[len(icc)-1], version: "Ghostscript " + strings.TrimSpace(string(out))}, nil
}

// Version is Ghostscript's name and version, as recorded with renditions.
func (c *Converter) Version() string { return c.version }

// Convert writes a PDF/A-2b rendition of the PDF in to out, titled title.
func (c *Converter) Convert(ctx context.Context, in, out, title string) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 120 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	def, err := os.CreateTemp(filepath.Dir(out), "pdfa-def-*.ps")
	if err != nil {
		return fmt.Errorf("pdfa: %w", err)
	}
	defer os.Remove(def.Name())
	fmt.Fprintf(def, `%%!
/ICCProfile (%s) def
[/_objdef {icc_PDFA} /type /stream /OBJ pdfmark
[{icc_PDFA} << /N 3 >> /PUT pdfmark
[{icc_PDFA} ICCProfile (r) file /PUT pdfmark
[/_objdef {OutputIntent_PDFA} /type /dict /OBJ pdfmark
[{OutputIntent_PDFA} << /Type /OutputIntent /S /GTS_PDFA1 /DestOutputProfile {icc_PDFA} /OutputConditionIdentifier (sRGB) >> /PUT pdfmark
[{Catalog} << /OutputIntents [ {OutputIntent_PDFA} ] >> /PUT pdfmark
`, c.icc)
	if err := def.Close(); err != nil {
		return fmt.Errorf("pdfa: %w", err)
	}
	cmd := exec.CommandContext(ctx, c.gs, "-q", "-dPDFA=2", "-dBATCH", "-dNOPAUSE", "-dPDFACompatibilityPolicy=1", "-dPDFSTOPONERROR",
		"-sColorConversionStrategy=RGB", "-sDEVICE=pdfwrite", "--permit-file-read="+c.icc,
		"-sOutputFile="+out, def.Name(), in)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(out)
		if ctx.Err() != nil {
			return fmt.Errorf("%w: no result after %s", ErrConvert, timeout)
		}
		return fmt.Errorf("%w: %v: %s", ErrConvert, err, lastLine(stderr.String()))
	}
	if title == "" {
		return nil
	}
	if err := SetTitle(out, title); err != nil {
		os.Remove(out)
		return err
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

var (
	trailerRE   = regexp.MustCompile(`trailer\s*<<([\s\S]*?)>>\s*startxref\s*(\d+)\s*%%EOF\s*$`)
	refRE       = func(key string) *regexp.Regexp { return regexp.MustCompile(`/` + key + `\s+(\d+)\s+0\s+R`) }
	rootRE      = refRE("Root")
	infoRE      = refRE("Info")
	metadataRE  = refRE("Metadata")
	sizeRE      = regexp.MustCompile(`/Size\s+(\d+)`)
	idKeyRE     = regexp.MustCompile(`/ID\s*\[`)
	dcTitleRE   = regexp.MustCompile(`(?s)<dc:title>.*?</dc:title>`)
	titleKeyRE  = regexp.MustCompile(`/Title\s*(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>)`)
	streamRE    = regexp.MustCompile(`(?s)stream\r?\n(.*?)\r?\nendstream`)
	dictBodyRE  = regexp.MustCompile(`(?s)^\s*<<(.*)>>\s*$`)
	errNotPlain = errors.New("pdfa: the rendition's cross-reference is not a plain table")
)

// SetTitle gives a PDF written by Ghostscript (a classic cross-reference table, an
// uncompressed XMP packet) the title in its information dictionary and its XMP dc:title, as
// an incremental update appended to the file: new revisions of the Info and Metadata
// objects. Only the tail, the cross-reference table and those two objects are read.
func SetTitle(path, title string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("pdfa: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pdfa: %w", err)
	}
	size64 := st.Size()
	readAt := func(off, n int64) ([]byte, error) {
		n = min(n, size64-off)
		if off < 0 || n <= 0 {
			return nil, errNotPlain
		}
		b := make([]byte, n)
		if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("pdfa: %w", err)
		}
		return b, nil
	}
	tail, err := readAt(max(0, size64-2048), 2048)
	if err != nil {
		return err
	}
	m := trailerRE.FindSubmatch(tail)
	if m == nil {
		return errNotPlain
	}
	trailer := string(m[1])
	prev, _ := strconv.ParseInt(string(m[2]), 10, 64)
	size, root, info := num(sizeRE, trailer), num(rootRE, trailer), num(infoRE, trailer)
	if size == 0 || root == 0 || info == 0 {
		return fmt.Errorf("pdfa: the trailer lacks /Size, /Root or /Info")
	}
	xref, err := readAt(prev, int64(size)*20+64)
	if err != nil {
		return err
	}
	offsets, err := xrefTable(xref)
	if err != nil {
		return err
	}
	object := func(n int) (string, error) {
		off, ok := offsets[n]
		if !ok {
			return "", fmt.Errorf("pdfa: object %d is not in the cross-reference table", n)
		}
		b, err := readAt(int64(off), 1<<20) // the catalog, Info and XMP are small
		if err != nil {
			return "", err
		}
		end := bytes.Index(b, []byte("endobj"))
		if end < 0 {
			return "", fmt.Errorf("pdfa: object %d has no endobj within 1 MiB", n)
		}
		body := string(b[:end])
		i := strings.Index(body, "obj")
		return body[i+3:], nil
	}
	cat, err := object(root)
	if err != nil {
		return err
	}
	meta := num(metadataRE, cat)
	if meta == 0 {
		return fmt.Errorf("pdfa: the catalog has no /Metadata")
	}
	metaObj, err := object(meta)
	if err != nil {
		return err
	}
	sm := streamRE.FindStringSubmatch(metaObj)
	if sm == nil || strings.Contains(metaObj[:strings.Index(metaObj, "stream")], "/Filter") {
		return fmt.Errorf("pdfa: the XMP metadata is not a plain stream")
	}
	xmp := dcTitleRE.ReplaceAllLiteralString(sm[1], "<dc:title><rdf:Alt><rdf:li xml:lang='x-default'>"+xmlEscape(title)+"</rdf:li></rdf:Alt></dc:title>")
	if !strings.Contains(xmp, "<dc:title>") {
		return fmt.Errorf("pdfa: the XMP metadata has no dc:title to replace")
	}
	infoObj, err := object(info)
	if err != nil {
		return err
	}
	dm := dictBodyRE.FindStringSubmatch(infoObj)
	if dm == nil {
		return fmt.Errorf("pdfa: the information dictionary does not parse")
	}
	infoDict := titleKeyRE.ReplaceAllLiteralString(dm[1], "")
	infoDict = "/Title " + pdfsig.TextString(title) + " " + strings.TrimSpace(infoDict)

	var w bytes.Buffer
	if tail[len(tail)-1] != '\n' {
		w.WriteByte('\n')
	}
	metaAt := size64 + int64(w.Len())
	fmt.Fprintf(&w, "%d 0 obj\n<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n%s\nendstream\nendobj\n", meta, len(xmp), xmp)
	infoAt := size64 + int64(w.Len())
	fmt.Fprintf(&w, "%d 0 obj\n<< %s >>\nendobj\n", info, infoDict)
	xrefAt := size64 + int64(w.Len())
	w.WriteString("xref\n0 1\n0000000000 65535 f \n")
	for _, e := range [][2]int64{{int64(meta), metaAt}, {int64(info), infoAt}} {
		fmt.Fprintf(&w, "%d 1\n%010d 00000 n \n", e[0], e[1])
	}
	id, err := idEntry(trailer)
	if err != nil {
		return err
	}
	fmt.Fprintf(&w, "trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", size, root, info, id, prev, xrefAt)
	if _, err := f.WriteAt(w.Bytes(), size64); err != nil {
		return fmt.Errorf("pdfa: %w", err)
	}
	return f.Close()
}

// idEntry is the trailer's "/ID [...]" entry as written. Ghostscript may write the two
// identifiers as literal strings of raw bytes, which can hold "]", ")" or "\\", so the
// array is scanned token by token rather than matched up to the first "]".
func idEntry(trailer string) (string, error) {
	loc := idKeyRE.FindStringIndex(trailer)
	if loc == nil {
		return "", nil
	}
	for i := loc[1]; i < len(trailer); i++ {
		switch trailer[i] {
		case ']':
			return trailer[loc[0] : i+1], nil
		case '(':
			depth := 1
			for i++; i < len(trailer) && depth > 0; i++ {
				switch trailer[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			i--
		case '<':
			j := strings.IndexByte(trailer[i:], '>')
			if j < 0 {
				return "", fmt.Errorf("pdfa: the trailer's /ID has an unterminated hex string")
			}
			i += j
		}
	}
	return "", fmt.Errorf("pdfa: the trailer's /ID array is not closed")
}

func num(re *regexp.Regexp, s string) int {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// xrefTable reads a classic cross-reference table (one section, no /Prev chain: what
// Ghostscript writes) from the bytes at its offset.
func xrefTable(b []byte) (map[int]int, error) {
	if !bytes.HasPrefix(b, []byte("xref")) {
		return nil, errNotPlain
	}
	lines := strings.Split(string(b), "\n")
	out := map[int]int{}
	for i := 1; i < len(lines); {
		f := strings.Fields(lines[i])
		if len(f) == 0 || f[0] == "trailer" {
			break
		}
		if len(f) != 2 {
			return nil, errNotPlain
		}
		first, _ := strconv.Atoi(f[0])
		count, _ := strconv.Atoi(f[1])
		for j := 0; j < count && i+1+j < len(lines); j++ {
			e := strings.Fields(lines[i+1+j])
			if len(e) == 3 && e[2] == "n" {
				o, _ := strconv.Atoi(e[0])
				out[first+j] = o
			}
		}
		i += 1 + count
	}
	return out, nil
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;").Replace(s)
}
