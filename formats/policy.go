package formats

import (
	"bytes"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"strings"
)

// Accepted says, for a 415 answer, what dangan archives today.
const Accepted = "PDF (kept after validation; encrypted PDFs are refused), OFD (kept after a structure check), " +
	"JPEG/PNG/TIFF scans (converted to PDF, the scan kept as the original), " +
	"JSON or XML form data (converted to canonical UTF-8 XML, the form kept as the original)"

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

// Prepared is a document ready to package: the archival rendition and, when conversion
// made one, the original beside it.
type Prepared struct {
	Rendition File  // the archival copy (the original itself when it is in an archival format)
	Original  *File // the original when a rendition was made; nil otherwise
	Tool      string
	Warnings  []string
}

// Prepare applies the archival policy to src (its SM3 digest sum, named name by its
// sender). Renditions are written to a Sink from newSink; newHash makes their digest (SM3).
func Prepare(src Source, sum []byte, name string, newSink func() (Sink, error), newHash func() hash.Hash) (*Prepared, error) {
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
	conv := func(ext, tool string, run func(io.Writer) error) (*Prepared, error) {
		return convert(orig, ext, tool, newSink, newHash, run)
	}
	switch fam {
	case "pdf":
		warns, err := ValidatePDF(src, size)
		if err != nil {
			return nil, err
		}
		return &Prepared{Rendition: orig, Warnings: warns}, nil
	case "ofd":
		info, err := CheckOFD(src, size)
		if err != nil {
			return nil, err
		}
		if info.DocType == "OFD-A" {
			orig.ID.Version = "OFD-A"
		}
		return &Prepared{Rendition: orig, Warnings: info.Warnings}, nil
	case "image":
		return conv(".pdf", ToolPDFImport, func(w io.Writer) error { return ImageToPDF(orig.Open(), w) })
	case "json":
		return conv(".xml", ToolJSONToXML, func(w io.Writer) error { return JSONToXML(orig.Open(), w) })
	case "xml":
		p, err := conv(".xml", ToolXMLC14N, func(w io.Writer) error { return CanonicalXML(orig.Open(), size, w) })
		if err != nil {
			return nil, err
		}
		if bytes.Equal(p.Rendition.SM3, sum) { // already canonical: keep one copy
			return &Prepared{Rendition: orig}, nil
		}
		return p, nil
	}
	return nil, fmt.Errorf("%w: %q is %s (%s); accepted: %s", ErrUnsupported, name, id.Name, id.PUID, Accepted)
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
