package formats

import (
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Accepted says, for a 415 answer, what dangan archives today.
const Accepted = "PDF (kept after validation; encrypted PDFs are refused), OFD (kept after a structure check), " +
	"JPEG/PNG/TIFF scans (converted to PDF, the scan kept as the original), " +
	"JSON or XML form data (converted to canonical UTF-8 XML, the form kept as the original)"

// File is a document file on local disk with its digest.
type File struct {
	Path string
	Name string // the name recorded in the package (计算机文件名)
	Size int64
	SM3  []byte
	ID   Identification
}

// Prepared is a document ready to package: the archival rendition and, when conversion
// made one, the original beside it.
type Prepared struct {
	Rendition File  // the archival copy (the original itself when it is in an archival format)
	Original  *File // the original when a rendition was made; nil otherwise
	Tool      string
	Warnings  []string
}

// Prepare applies the archival policy to the original at src (size bytes, digest sum, named
// name by its sender). Renditions are written into workDir; newHash makes the digest (SM3)
// recorded for them.
func Prepare(src string, size int64, sum []byte, name, workDir string, newHash func() hash.Hash) (*Prepared, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("open document: %w", err)
	}
	defer f.Close()
	id, err := Identify(f, size, name)
	if err != nil {
		return nil, err
	}
	orig := File{Path: src, Name: name, Size: size, SM3: sum, ID: id}
	fam := id.Family()
	if ext := extensionFamily(name); ext != "" && ext != fam {
		return nil, fmt.Errorf("%w: %q is named as %s but its content is %s (%s)", ErrMislabelled, name, ext, id.Name, id.PUID)
	}
	switch fam {
	case "pdf":
		warns, err := ValidatePDF(f, size)
		if err != nil {
			return nil, err
		}
		return &Prepared{Rendition: orig, Warnings: warns}, nil
	case "ofd":
		info, err := CheckOFD(f, size)
		if err != nil {
			return nil, err
		}
		if info.DocType == "OFD-A" {
			orig.ID.Version = "OFD-A"
		}
		return &Prepared{Rendition: orig, Warnings: info.Warnings}, nil
	case "image":
		return convert(orig, workDir, ".pdf", ToolPDFImport, newHash, func(w io.Writer) error { return ImageToPDF(f, w) })
	case "json":
		return convert(orig, workDir, ".xml", ToolJSONToXML, newHash, func(w io.Writer) error { return JSONToXML(f, w) })
	case "xml":
		p, err := convert(orig, workDir, ".xml", ToolXMLC14N, newHash, func(w io.Writer) error { return CanonicalXML(f, size, w) })
		if err != nil {
			return nil, err
		}
		if string(p.Rendition.SM3) == string(sum) { // already canonical: keep one copy
			os.Remove(p.Rendition.Path)
			return &Prepared{Rendition: orig}, nil
		}
		return p, nil
	}
	return nil, fmt.Errorf("%w: %q is %s (%s); accepted: %s", ErrUnsupported, name, id.Name, id.PUID, Accepted)
}

func convert(orig File, workDir, ext, tool string, newHash func() hash.Hash, run func(io.Writer) error) (*Prepared, error) {
	out, err := os.CreateTemp(workDir, "rendition-*"+ext)
	if err != nil {
		return nil, fmt.Errorf("create rendition: %w", err)
	}
	h := newHash()
	cw := &countWriter{w: io.MultiWriter(out, h)}
	if err := run(cw); err != nil {
		out.Close()
		os.Remove(out.Name())
		return nil, err
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		return nil, fmt.Errorf("write rendition: %w", err)
	}
	rf, err := os.Open(out.Name())
	if err != nil {
		return nil, fmt.Errorf("reopen rendition: %w", err)
	}
	id, err := Identify(rf, cw.n, "x"+ext)
	rf.Close()
	if err != nil {
		return nil, fmt.Errorf("identify rendition: %w", err)
	}
	base := strings.TrimSuffix(orig.Name, filepath.Ext(orig.Name))
	r := File{Path: out.Name(), Name: base + ext, Size: cw.n, SM3: h.Sum(nil), ID: id}
	o := orig
	return &Prepared{Rendition: r, Original: &o, Tool: tool}, nil
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
