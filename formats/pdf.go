package formats

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

func init() { api.DisableConfigDir() }

// PDFFullValidationLimit is the largest PDF validated with pdfcpu (relaxed mode). pdfcpu
// holds the document in memory (measured: 1.6 GB RSS for a 512 MiB PDF), so larger files get
// the bounded structural check only: header, cross-reference, trailer, no encryption.
var PDFFullValidationLimit int64 = 64 << 20

var encryptKey = regexp.MustCompile(`/Encrypt[\s/<\[0-9]`)

// ValidatePDF checks a PDF file. It returns ErrEncrypted for an encrypted PDF (DA/T 70
// GD-3-8) and ErrInvalid for one that does not open or does not pass pdfcpu's (relaxed)
// validation.
func ValidatePDF(f io.ReaderAt, size int64) (warnings []string, err error) {
	return validatePDF(f, size, false)
}

// ReadablePDF is ValidatePDF for a PDF made by someone else that is kept as it is: one
// that opens but breaks a rule of the PDF specification (an invalid date in an annotation,
// say) is accepted, the rule it breaks returned as a warning. Every reader opens such
// files, and the archive must keep what the department holds.
func ReadablePDF(f io.ReaderAt, size int64) (warnings []string, err error) {
	return validatePDF(f, size, true)
}

func validatePDF(f io.ReaderAt, size int64, lenient bool) (warnings []string, err error) {
	if err := checkPDFStructure(f, size); err != nil {
		return nil, err
	}
	if size > PDFFullValidationLimit {
		return []string{fmt.Sprintf("PDF of %d MiB: structural check only (full validation up to %d MiB)", size>>20, PDFFullValidationLimit>>20)}, nil
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err := api.ReadContext(io.NewSectionReader(f, 0, size), conf)
	if err != nil {
		if bytes.Contains([]byte(err.Error()), []byte("password")) || bytes.Contains([]byte(err.Error()), []byte("encrypt")) {
			return nil, fmt.Errorf("%w: %v", ErrEncrypted, err)
		}
		return nil, fmt.Errorf("%w: PDF does not open: %v", ErrInvalid, err)
	}
	if ctx.XRefTable.Encrypt != nil {
		return nil, fmt.Errorf("%w: the PDF has an /Encrypt dictionary", ErrEncrypted)
	}
	if err := api.ValidateContext(ctx); err != nil {
		if lenient {
			return []string{"the PDF opens but does not conform to the PDF specification: " + err.Error()}, nil
		}
		return nil, fmt.Errorf("%w: PDF validation: %v", ErrInvalid, err)
	}
	return nil, nil
}

var pdfBufs = sync.Pool{New: func() any { return &[2][]byte{make([]byte, 64<<10), make([]byte, 64<<10)} }}

var (
	startxref = regexp.MustCompile(`startxref\s+(\d+)\s+%%EOF`)
	objHeader = regexp.MustCompile(`^\d+\s+\d+\s+obj`)
)

// checkPDFStructure reads only the head, the tail and the last cross-reference section.
func checkPDFStructure(f io.ReaderAt, size int64) error {
	head := make([]byte, min(size, 1024))
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		return fmt.Errorf("read PDF head: %w", err)
	}
	if !bytes.Contains(head, []byte("%PDF-")) {
		return fmt.Errorf("%w: no %%PDF- header", ErrInvalid)
	}
	bufs := pdfBufs.Get().(*[2][]byte)
	defer pdfBufs.Put(bufs)
	tailLen := min(size, 64<<10)
	tail := bufs[0][:tailLen]
	if _, err := f.ReadAt(tail, size-tailLen); err != nil && err != io.EOF {
		return fmt.Errorf("read PDF tail: %w", err)
	}
	ms := startxref.FindAllSubmatch(tail, -1)
	if len(ms) == 0 {
		return fmt.Errorf("%w: no startxref/%%%%EOF at the end: the PDF is truncated", ErrInvalid)
	}
	if encryptKey.Match(tail) {
		return fmt.Errorf("%w: the trailer names an /Encrypt dictionary", ErrEncrypted)
	}
	off, err := strconv.ParseInt(string(ms[len(ms)-1][1]), 10, 64)
	if err != nil || off <= 0 || off >= size {
		return fmt.Errorf("%w: startxref offset %s outside the file", ErrInvalid, ms[len(ms)-1][1])
	}
	xref := bufs[1][:min(size-off, 64<<10)]
	if _, err := f.ReadAt(xref, off); err != nil && err != io.EOF {
		return fmt.Errorf("read PDF cross-reference: %w", err)
	}
	// Writers in the field (node-signpdf, for one) point a byte or two before the section;
	// readers look past the white space, and so does this check.
	xref = bytes.TrimLeft(xref, " \t\r\n\f\x00")
	if !bytes.HasPrefix(xref, []byte("xref")) && !objHeader.Match(xref) {
		return fmt.Errorf("%w: startxref does not point at a cross-reference section", ErrInvalid)
	}
	if encryptKey.Match(xref) {
		return fmt.Errorf("%w: the cross-reference trailer names an /Encrypt dictionary", ErrEncrypted)
	}
	return nil
}

// OpenPDF checks that a PDF opens with pdfcpu (parsing its cross-reference and objects,
// without validating them): the long-term readability check. Above PDFFullValidationLimit
// it is the structural check only.
func OpenPDF(f io.ReaderAt, size int64) error {
	if err := checkPDFStructure(f, size); err != nil {
		return err
	}
	if size > PDFFullValidationLimit {
		return nil
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	if _, err := api.ReadContext(io.NewSectionReader(f, 0, size), conf); err != nil {
		return fmt.Errorf("%w: PDF does not open: %v", ErrInvalid, err)
	}
	return nil
}
