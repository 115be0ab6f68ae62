package pdfa

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
)

// Claim reads the PDF/A identification a PDF declares in its XMP metadata
// (pdfaid:part and pdfaid:conformance), scanning the file in bounded windows. It says what
// the file claims, which a validator would then have to confirm.
func Claim(r io.ReaderAt, size int64) (part, conformance string, err error) {
	const window, overlap = 1 << 20, 4 << 10
	buf := make([]byte, window+overlap)
	for off := int64(0); off < size; off += window {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && err != io.EOF {
			return "", "", fmt.Errorf("read PDF: %w", err)
		}
		chunk := buf[:n]
		if i := bytes.Index(chunk, []byte("pdfaid:part")); i >= 0 {
			// The XMP packet around it is small: read from there.
			seg := make([]byte, min(int64(8<<10), size-off-int64(i)))
			if _, err := r.ReadAt(seg, off+int64(i)); err != nil && err != io.EOF {
				return "", "", fmt.Errorf("read PDF: %w", err)
			}
			return xmpValue(seg, "part"), xmpValue(seg, "conformance"), nil
		}
	}
	return "", "", nil
}

var xmpPDFAID = map[string]*regexp.Regexp{
	"part":        regexp.MustCompile(`pdfaid:part(?:>\s*|\s*=\s*["'])([0-9])`),
	"conformance": regexp.MustCompile(`pdfaid:conformance(?:>\s*|\s*=\s*["'])([ABUabu])`),
}

func xmpValue(seg []byte, name string) string {
	m := xmpPDFAID[name].FindSubmatch(seg)
	if m == nil {
		return ""
	}
	return string(bytes.ToUpper(m[1]))
}
