// Package formats identifies, validates and converts documents to archival formats, and
// (in formats/eep) writes and reads DA/T 48 packages.
//
// Identification uses siegfried's embedded PRONOM signatures (no network) on a bounded
// window of the file, plus OFD detection. Prepare applies the format policy (policy.json)
// with the converters given (formats/office, formats/pdfa):
//
//	id, _ := formats.Identify(f, size, "scan.jpg")
//	res, err := formats.Prepare(ctx, f, sum, "scan.jpg", formats.PrepareOptions{NewSink: …, NewHash: sm3.New, Tools: tools})
//	// res.Rendition is the archival file (PDF/A-2b for a scan); res.Original the scan itself.
package formats

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/richardlehane/siegfried"
	"github.com/richardlehane/siegfried/pkg/static"
)

// Sentinel errors, mapped to HTTP statuses at the API edge.
var (
	ErrUnsupported = errors.New("format not accepted for archiving")
	ErrMislabelled = errors.New("file name does not match its content")
	ErrEncrypted   = errors.New("document is encrypted")
	ErrInvalid     = errors.New("document is damaged or invalid")
	ErrEmpty       = errors.New("document is empty")
)

// Identification names a format.
type Identification struct {
	PUID    string `json:"puid"` // PRONOM id, or "ofd"
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	MIME    string `json:"mime"`
}

// Family is the coarse kind the archival policy acts on.
func (id Identification) Family() string {
	switch {
	case id.PUID == "ofd":
		return "ofd"
	case id.MIME == "application/pdf":
		return "pdf"
	case id.MIME == "image/jpeg", id.MIME == "image/png", id.MIME == "image/tiff":
		return "image"
	case id.MIME == "application/json":
		return "json"
	case id.MIME == "application/xml", id.MIME == "text/xml":
		return "xml"
	}
	return "other"
}

// OFD is the identification dangan gives OFD documents (they have no PRONOM id).
var OFD = Identification{PUID: "ofd", Name: "Open Fixed-layout Document (GB/T 33190)", MIME: "application/ofd"}

// JSON is the identification of JSON form data (PRONOM fmt/817).
var JSON = Identification{PUID: "fmt/817", Name: "JSON Data Interchange Format", MIME: "application/json"}

// XML is the identification of XML form data (PRONOM fmt/101).
var XML = Identification{PUID: "fmt/101", Name: "Extensible Markup Language", Version: "1.0", MIME: "application/xml"}

var (
	sfOnce sync.Once
	sf     *siegfried.Siegfried
)

func identifier() *siegfried.Siegfried {
	sfOnce.Do(func() { sf = static.New() })
	return sf
}

// window is how much of the head and of the tail of a file siegfried sees: PRONOM
// signatures anchor at the beginning or the end, and a bounded window keeps identification
// fast and its memory small on large files.
const window = 1 << 20

// Identify names the format of the content of r (size bytes). name is the file name the
// sender gave, used only to break ties.
func Identify(r io.ReaderAt, size int64, name string) (Identification, error) {
	if size == 0 {
		return Identification{}, ErrEmpty
	}
	if isOFD(r, size) {
		return OFD, nil
	}
	if looksLikeJSON(r, size) {
		return JSON, nil
	}
	if looksLikeXML(r, size, name) {
		return XML, nil
	}
	var view io.Reader = io.NewSectionReader(r, 0, size)
	if size > 2*window {
		view = io.MultiReader(io.NewSectionReader(r, 0, window), io.NewSectionReader(r, size-window, window))
	}
	ids, err := identifier().Identify(view, path.Base(name), "")
	if err != nil {
		return Identification{}, fmt.Errorf("identify: %w", err)
	}
	if len(ids) == 0 {
		return Identification{}, fmt.Errorf("%w: unknown format", ErrUnsupported)
	}
	v := ids[0].Values() // namespace, id, name, version, mime, class, basis, warning
	if len(v) < 5 || v[1] == "UNKNOWN" {
		return Identification{PUID: "UNKNOWN", Name: "unknown format", MIME: "application/octet-stream"}, nil
	}
	return Identification{PUID: v[1], Name: v[2], Version: v[3], MIME: v[4]}, nil
}

func isOFD(r io.ReaderAt, size int64) bool {
	head := make([]byte, 4)
	if _, err := r.ReadAt(head, 0); err != nil || !bytes.Equal(head, []byte("PK\x03\x04")) {
		return false
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return false
	}
	for _, f := range zr.File {
		if strings.EqualFold(strings.TrimPrefix(f.Name, "/"), "OFD.xml") {
			return true
		}
	}
	return false
}

func looksLikeJSON(r io.ReaderAt, size int64) bool {
	buf := make([]byte, min(size, 512))
	n, _ := r.ReadAt(buf, 0)
	s := bytes.TrimLeft(buf[:n], " \t\r\n\xef\xbb\xbf")
	if len(s) == 0 || s[0] != '{' && s[0] != '[' {
		return false
	}
	// What follows the bracket must start a JSON member or value ({\rtf1 is RTF).
	rest := bytes.TrimLeft(s[1:], " \t\r\n")
	if len(rest) == 0 {
		return true
	}
	if s[0] == '{' {
		return rest[0] == '"' || rest[0] == '}'
	}
	return bytes.IndexByte([]byte(`"{[]-0123456789tfn`), rest[0]) >= 0
}

// looksLikeXML: an XML declaration, or markup in a file named .xml (form data often has
// no declaration, and PRONOM's signature needs one).
func looksLikeXML(r io.ReaderAt, size int64, name string) bool {
	buf := make([]byte, min(size, 512))
	n, _ := r.ReadAt(buf, 0)
	s := bytes.TrimLeft(buf[:n], " \t\r\n\xef\xbb\xbf")
	if bytes.HasPrefix(s, []byte("<?xml")) {
		return true
	}
	return len(s) > 0 && s[0] == '<' && strings.EqualFold(path.Ext(name), ".xml")
}

// extensionFamily is the family a file name's extension claims, or "" when it claims none
// dangan knows.
func extensionFamily(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".pdf":
		return "pdf"
	case ".ofd":
		return "ofd"
	case ".jpg", ".jpeg", ".png", ".tif", ".tiff":
		return "image"
	case ".json":
		return "json"
	case ".xml":
		return "xml"
	}
	return ""
}

// pdfVersions maps a PDF header version to its PRONOM format, as siegfried names it.
var pdfVersions = map[string]Identification{
	"1.0": {PUID: "fmt/14", Name: "Acrobat PDF 1.0 - Portable Document Format", Version: "1.0", MIME: "application/pdf"},
	"1.1": {PUID: "fmt/15", Name: "Acrobat PDF 1.1 - Portable Document Format", Version: "1.1", MIME: "application/pdf"},
	"1.2": {PUID: "fmt/16", Name: "Acrobat PDF 1.2 - Portable Document Format", Version: "1.2", MIME: "application/pdf"},
	"1.3": {PUID: "fmt/17", Name: "Acrobat PDF 1.3 - Portable Document Format", Version: "1.3", MIME: "application/pdf"},
	"1.4": {PUID: "fmt/18", Name: "Acrobat PDF 1.4 - Portable Document Format", Version: "1.4", MIME: "application/pdf"},
	"1.5": {PUID: "fmt/19", Name: "Acrobat PDF 1.5 - Portable Document Format", Version: "1.5", MIME: "application/pdf"},
	"1.6": {PUID: "fmt/20", Name: "Acrobat PDF 1.6 - Portable Document Format", Version: "1.6", MIME: "application/pdf"},
	"1.7": {PUID: "fmt/276", Name: "Acrobat PDF 1.7 - Portable Document Format", Version: "1.7", MIME: "application/pdf"},
}

// identifyOwnPDF names a PDF dangan itself made (a plain PDF, never PDF/A) by its header
// version, sparing a siegfried pass; ok is false for any other header.
func identifyOwnPDF(r io.ReaderAt) (Identification, bool) {
	head := make([]byte, 8)
	if _, err := r.ReadAt(head, 0); err != nil || !bytes.HasPrefix(head, []byte("%PDF-")) {
		return Identification{}, false
	}
	id, ok := pdfVersions[string(head[5:8])]
	return id, ok
}

// Archival reports whether a format is one dangan keeps as an archival rendition (GB/T
// 18894, DA/T 70 GD-3-3): PDF, OFD or XML.
func (id Identification) Archival() bool {
	switch id.Family() {
	case "pdf", "ofd", "xml":
		return true
	}
	return false
}
