package formats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/dangan-archive/dangan/formats/office"
	"github.com/dangan-archive/dangan/formats/pdfa"
)

// Source is document content: random access and a size. A file or a byte slice in memory.
type Source interface {
	io.ReaderAt
	Size() int64
}

// Sink receives a rendition as it is made; Source returns what was written.
type Sink interface {
	io.Writer
	Source() (Source, error)
}

// File is a document with its digest.
type File struct {
	Src  Source
	Name string // the name recorded in the package (计算机文件名)
	Size int64
	SM3  []byte
	ID   Identification
}

// Open returns a reader of the whole file.
func (f File) Open() io.Reader { return io.NewSectionReader(f.Src, 0, f.Size) }

// Prepared is a document ready to package: the archival copy and, when conversion made
// one, the original beside it.
type Prepared struct {
	Rendition File  // the archival copy (the original itself when it is in an archival format)
	Original  *File // the original when a rendition is the archival copy; nil otherwise
	// Beside is a PDF/A rendition kept next to an original that stays the archival copy
	// (a signed PDF, which is never rewritten).
	Beside     *File
	Tool       string      // the tool and version that made the rendition
	Conversion *Conversion // how the rendition was made; nil when there is none
	Warnings   []string
}

// Conversion records how a rendition was made, for the package's metadata.
type Conversion struct {
	SourcePUID string `json:"source_puid"`
	SourceName string `json:"source_name"`
	Target     string `json:"target"` // "PDF/A-2b", "PDF", "XML"
	Tool       string `json:"tool"`
	At         string `json:"at"` // RFC 3339
}

// Tools are the converters Prepare may use and the policy that picks them.
type Tools struct {
	Policy  *Policy         // nil: the shipped policy
	Office  *office.Pool    // nil: LibreOffice is not installed
	PDFA    *pdfa.Converter // nil: Ghostscript is not installed
	WorkDir string          // scratch space for the external tools ("": the system's)
	Now     func() time.Time
}

// PrepareOptions are Prepare's inputs beside the document.
type PrepareOptions struct {
	NewSink func() (Sink, error) // where renditions are written
	NewHash func() hash.Hash     // their digest (SM3)
	Tools   *Tools               // nil: no external tools, the shipped policy
	Title   string               // the document's title, given to PDF renditions
}

// Prepare applies the format policy to src (its SM3 digest sum, named name by its sender).
func Prepare(ctx context.Context, src Source, sum []byte, name string, o PrepareOptions) (*Prepared, error) {
	t := o.Tools
	if t == nil {
		t = &Tools{}
	}
	pol := t.Policy
	if pol == nil {
		pol = DefaultPolicy()
	}
	size := src.Size()
	id, err := Identify(src, size, name)
	if err != nil {
		return nil, err
	}
	orig := File{Src: src, Name: name, Size: size, SM3: sum, ID: id}
	fam := id.Family()
	if ext := extensionFamily(name); ext != "" && ext != fam {
		return nil, fmt.Errorf("%w: %q is named as %s but its content is %s (%s)", ErrMislabelled, name, ext, id.Name, id.PUID)
	}
	rule := pol.Rule(id)
	conv := func(ext, target, tool string, run func(io.Writer) error) (*Prepared, error) {
		p, err := convert(orig, ext, tool, o.NewSink, o.NewHash, run)
		if err == nil && target == "PDF/A-2b" {
			// A rendition is only archived when it is what it claims and opens; a tool that
			// wrote a bad one gets one more try.
			if err = checkPDFA(p.Rendition); err != nil {
				first := err
				if p, err = convert(orig, ext, tool, o.NewSink, o.NewHash, run); err == nil {
					if err = checkPDFA(p.Rendition); err == nil {
						p.Warnings = append(p.Warnings, fmt.Sprintf("the first %s rendition was bad (%v) and was made again", target, first))
					}
				}
				if err != nil {
					err = fmt.Errorf("%w: the %s rendition made by %s: %v", ErrInvalid, target, tool, err)
				}
			}
		}
		if err == nil {
			p.Conversion = &Conversion{SourcePUID: id.PUID, SourceName: id.Name, Target: target, Tool: tool, At: t.now().UTC().Format(time.RFC3339)}
		}
		return p, err
	}
	missing := func(tool string, why error) error {
		return fmt.Errorf("%w: %q is %s (%s), which the policy converts with %s: %v", ErrUnsupported, name, id.Name, id.PUID, tool, why)
	}
	switch rule.Action {
	case ActionRefuse:
		return nil, fmt.Errorf("%w: %q is %s (%s); accepted: %s", ErrUnsupported, name, id.Name, id.PUID, pol.Accepted())
	case ActionKeep:
		return keep(orig)
	case ActionXML:
		if rule.Tool == ToolJSON {
			return conv(".xml", "XML", ToolJSONToXML, func(w io.Writer) error { return JSONToXML(orig.Open(), w) })
		}
		p, err := conv(".xml", "XML", ToolXMLC14N, func(w io.Writer) error { return CanonicalXML(orig.Open(), size, w) })
		if err != nil {
			return nil, err
		}
		if bytes.Equal(p.Rendition.SM3, sum) { // already canonical: keep one copy
			return &Prepared{Rendition: orig}, nil
		}
		return p, nil
	}
	// PDF/A-2b.
	switch rule.Tool {
	case ToolGhostscript:
		p, err := keep(orig)
		if err != nil {
			return nil, err
		}
		if t.PDFA == nil {
			if rule.Fallback == ActionKeep {
				p.Warnings = append(p.Warnings, "no PDF/A-2b rendition: "+pdfa.ErrUnavailable.Error())
				return p, nil
			}
			return nil, missing(ToolGhostscript, pdfa.ErrUnavailable)
		}
		signed, err := hasSignature(src, size)
		if err != nil {
			return nil, err
		}
		r, err := conv(".pdf", "PDF/A-2b", t.PDFA.Version(), t.external(ctx, ".pdf", copyOf(orig), func(in, out string) error {
			return gsErr(t.PDFA.Convert(ctx, in, out, o.Title))
		}))
		if err != nil {
			// A signed PDF is its own archival copy: a rendition Ghostscript cannot make
			// (a damaged stream the signer's reader tolerated) is a warning, not a refusal.
			if signed && ctx.Err() == nil {
				p.Warnings = append(p.Warnings, "no PDF/A-2b rendition beside the signed original: "+err.Error())
				return p, nil
			}
			return nil, err
		}
		// The rendition of a PDF is a PDF too: its name says which it is.
		r.Rendition.Name = strings.TrimSuffix(name, filepath.Ext(name)) + "-pdfa.pdf"
		if signed { // the signed original stays the archival copy, untouched
			beside := r.Rendition
			p.Beside, p.Tool, p.Conversion = &beside, r.Tool, r.Conversion
			return p, nil
		}
		r.Warnings = p.Warnings
		return r, nil
	case ToolImageGS:
		if t.PDFA == nil {
			if rule.Fallback == FallbackPDF {
				p, err := conv(".pdf", "PDF", ToolPDFImport, func(w io.Writer) error { return ImageToPDF(orig.Open(), w) })
				if err == nil {
					p.Warnings = append(p.Warnings, "a plain PDF, not PDF/A-2b: "+pdfa.ErrUnavailable.Error())
				}
				return p, err
			}
			return nil, missing(ToolImageGS, pdfa.ErrUnavailable)
		}
		// The scan is imported as A4 pages into the scratch input, which Ghostscript reads.
		importScan := func(w io.Writer) error { return ImageToPDF(orig.Open(), w) }
		return conv(".pdf", "PDF/A-2b", ToolPDFImport+" + "+t.PDFA.Version(), t.external(ctx, ".pdf", importScan, func(in, out string) error {
			return gsErr(t.PDFA.Convert(ctx, in, out, o.Title))
		}))
	case ToolLibreOffice:
		if t.Office == nil {
			return nil, missing(ToolLibreOffice, office.ErrUnavailable)
		}
		kind := map[string]string{"x-fmt/111": "txt", "x-fmt/18": "csv"}[id.PUID]
		ext := strings.ToLower(filepath.Ext(name))
		if ext == "" || len(ext) > 6 {
			ext = ".bin"
		}
		return conv(".pdf", "PDF/A-2b", t.Office.Version(), t.external(ctx, ext, copyOf(orig), func(in, out string) error {
			if kind != "" {
				if err := toUTF8(in); err != nil {
					return err
				}
			}
			err := t.Office.Convert(ctx, in, out, office.Options{Title: o.Title, Kind: kind})
			if errors.Is(err, office.ErrConvert) || errors.Is(err, office.ErrTimeout) || errors.Is(err, office.ErrMemory) {
				return fmt.Errorf("%w: %v", ErrInvalid, err) // this document cannot be converted: 422
			}
			return err
		}))
	}
	return nil, fmt.Errorf("%w: policy rule %q: unknown tool %q", ErrUnsupported, rule.Name, rule.Tool)
}

// gsErr makes Ghostscript's failure on a document a damaged-document error (422).
func gsErr(err error) error {
	if errors.Is(err, pdfa.ErrConvert) {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return err
}

// checkPDFA checks that a rendition claims PDF/A-2b and opens.
func checkPDFA(f File) error {
	part, conf, err := pdfa.Claim(f.Src, f.Size)
	if err != nil {
		return err
	}
	if part != "2" || conf != "B" {
		return fmt.Errorf("it claims PDF/A part %q conformance %q", part, conf)
	}
	if _, err := ValidatePDF(f.Src, f.Size); err != nil {
		return fmt.Errorf("it does not open: %w", err)
	}
	return nil
}

// keep checks a file that is its own archival copy.
func keep(orig File) (*Prepared, error) {
	switch orig.ID.Family() {
	case "pdf":
		warns, err := ReadablePDF(orig.Src, orig.Size)
		if err != nil {
			return nil, err
		}
		return &Prepared{Rendition: orig, Warnings: warns}, nil
	case "ofd":
		info, err := CheckOFD(orig.Src, orig.Size)
		if err != nil {
			return nil, err
		}
		if info.DocType == "OFD-A" {
			orig.ID.Version = "OFD-A"
		}
		return &Prepared{Rendition: orig, Warnings: info.Warnings}, nil
	}
	return &Prepared{Rendition: orig}, nil
}

func (t *Tools) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// external runs a file-to-file tool: input writes the scratch input (named with ext), run
// makes out from it, and out is streamed to w. The scratch files are removed.
func (t *Tools) external(ctx context.Context, ext string, input func(io.Writer) error, run func(in, out string) error) func(io.Writer) error {
	return func(w io.Writer) error {
		dir, err := os.MkdirTemp(t.WorkDir, "convert-")
		if err != nil {
			return fmt.Errorf("conversion scratch: %w", err)
		}
		defer os.RemoveAll(dir)
		in, out := filepath.Join(dir, "in"+ext), filepath.Join(dir, "out.pdf")
		f, err := os.Create(in)
		if err != nil {
			return fmt.Errorf("conversion scratch: %w", err)
		}
		err = input(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := run(in, out); err != nil {
			return err
		}
		r, err := os.Open(out)
		if err != nil {
			return fmt.Errorf("rendition: %w", err)
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	}
}

// copyOf writes the original itself as a tool's input.
func copyOf(orig File) func(io.Writer) error {
	return func(w io.Writer) error {
		if _, err := io.Copy(w, orig.Open()); err != nil {
			return fmt.Errorf("conversion scratch: %w", err)
		}
		return nil
	}
}

// hasSignature reports whether a PDF carries a signature dictionary (a /ByteRange),
// reading it in bounded windows.
func hasSignature(r io.ReaderAt, size int64) (bool, error) {
	const window, overlap = 1 << 20, 64
	buf := make([]byte, window+overlap)
	for off := int64(0); off < size; off += window {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && err != io.EOF {
			return false, fmt.Errorf("read PDF: %w", err)
		}
		if bytes.Contains(buf[:n], []byte("/ByteRange")) {
			return true, nil
		}
	}
	return false, nil
}

// toUTF8 rewrites a text file that is not UTF-8 from GB 18030 (GBK, GB 2312), as county
// systems export, so LibreOffice reads it as UTF-8.
func toUTF8(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if utf8.Valid(b) {
		return nil
	}
	u, err := simplifiedchinese.GB18030.NewDecoder().Bytes(b)
	if err != nil {
		return fmt.Errorf("%w: the text is neither UTF-8 nor GB 18030", ErrInvalid)
	}
	return os.WriteFile(path, u, 0o600)
}

func convert(orig File, ext, tool string, newSink func() (Sink, error), newHash func() hash.Hash, run func(io.Writer) error) (*Prepared, error) {
	sink, err := newSink()
	if err != nil {
		return nil, fmt.Errorf("rendition: %w", err)
	}
	h := newHash()
	cw := &countWriter{w: io.MultiWriter(sink, h)}
	if err := run(cw); err != nil {
		return nil, err
	}
	src, err := sink.Source()
	if err != nil {
		return nil, fmt.Errorf("rendition: %w", err)
	}
	id, ok := identifyOwnPDF(src)
	if !ok {
		if id, err = Identify(src, cw.n, "x"+ext); err != nil {
			return nil, fmt.Errorf("identify rendition: %w", err)
		}
	}
	base := strings.TrimSuffix(orig.Name, filepath.Ext(orig.Name))
	o := orig
	return &Prepared{Rendition: File{Src: src, Name: base + ext, Size: cw.n, SM3: h.Sum(nil), ID: id}, Original: &o, Tool: tool}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// MemSink is a Sink in memory, for tests and small renditions.
type MemSink struct{ bytes.Buffer }

// Source implements Sink.
func (m *MemSink) Source() (Source, error) { return bytes.NewReader(m.Bytes()), nil }
