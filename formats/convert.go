package formats

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/text/encoding/htmlindex"
)

// Tool names recorded with renditions.
const (
	ToolPDFImport = "pdfcpu v0.15.0 image import (A4)"
	ToolJSONToXML = "dangan json-to-xml (W3C XPath 3.1 mapping)"
	ToolXMLC14N   = "dangan XML canonicalisation (C14N 1.0)"
)

// ImageToPDF writes a PDF with one A4 page per image (JPEG is passed through unchanged).
func ImageToPDF(src io.Reader, w io.Writer) error {
	imp, err := api.Import("formsize:A4, position:c, scalefactor:0.95 rel", types.POINTS)
	if err != nil {
		return fmt.Errorf("image import settings: %w", err)
	}
	conf := model.NewDefaultConfiguration()
	// A classic cross-reference table and no object streams: what PDF/A-1 requires and every
	// reader handles, and 2.5x faster here, since no flate compressor is set up for them.
	conf.WriteObjectStream = false
	conf.WriteXRefStream = false
	if err := api.ImportImages(nil, w, []io.Reader{src}, imp, conf); err != nil {
		return fmt.Errorf("%w: image does not convert to PDF: %v", ErrInvalid, err)
	}
	return nil
}

// XPath functions namespace of the W3C JSON-to-XML mapping (XPath and XQuery Functions 3.1
// §17.5): a standard, reversible representation of any JSON value as XML.
const xpathFnNS = "http://www.w3.org/2005/xpath-functions"

// JSONToXML streams JSON form data into canonical UTF-8 XML in the W3C json-to-xml mapping,
// keeping member order. Invalid JSON is ErrInvalid.
func JSONToXML(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.UseNumber()
	bw := bufio.NewWriter(w)
	first := true
	var emit func(key *string) error
	// A string XML 1.0 cannot hold (a control character JSON allows) is written as the
	// mapping's escape option writes it: JSON escapes, marked escaped="true" (a key,
	// escaped-key="true"), so nothing is lost and the rendition stays well-formed XML.
	open := func(tag string, key *string, escaped bool) {
		bw.WriteString("<" + tag)
		if first {
			bw.WriteString(` xmlns="` + xpathFnNS + `"`)
			first = false
		}
		if escaped {
			bw.WriteString(` escaped="true"`)
		}
		if key != nil {
			if ValidXMLText(*key) {
				bw.WriteString(` key="` + EscapeAttr(*key) + `"`)
			} else {
				bw.WriteString(` escaped-key="true" key="` + EscapeAttr(jsonEscape(*key)) + `"`)
			}
		}
		bw.WriteString(">")
	}
	emit = func(key *string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case json.Delim:
			tag := "map"
			if v == '[' {
				tag = "array"
			}
			open(tag, key, false)
			for dec.More() {
				var k *string
				if tag == "map" {
					kt, err := dec.Token()
					if err != nil {
						return err
					}
					s := kt.(string)
					k = &s
				}
				if err := emit(k); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // closing delimiter
				return err
			}
			bw.WriteString("</" + tag + ">")
		case string:
			if ValidXMLText(v) {
				open("string", key, false)
				bw.WriteString(EscapeText(v))
			} else {
				open("string", key, true)
				bw.WriteString(EscapeText(jsonEscape(v)))
			}
			bw.WriteString("</string>")
		case json.Number:
			open("number", key, false)
			bw.WriteString(v.String())
			bw.WriteString("</number>")
		case bool:
			open("boolean", key, false)
			fmt.Fprint(bw, v)
			bw.WriteString("</boolean>")
		case nil:
			open("null", key, false)
			bw.WriteString("</null>")
		}
		return nil
	}
	if err := emit(nil); err != nil {
		return fmt.Errorf("%w: JSON: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: JSON: data after the top-level value", ErrInvalid)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write XML: %w", err)
	}
	return nil
}

// MaxXMLForm bounds XML form data: canonicalisation holds the document tree in memory.
const MaxXMLForm = 32 << 20

// CanonicalXML rewrites XML form data as C14N 1.0 (without comments) UTF-8, converting
// legacy encodings such as GBK.
func CanonicalXML(r io.Reader, size int64, w io.Writer) error {
	if size > MaxXMLForm {
		return fmt.Errorf("%w: XML form data of %d bytes exceeds the %d-byte limit", ErrUnsupported, size, MaxXMLForm)
	}
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		enc, err := htmlindex.Get(label)
		if err != nil {
			return nil, fmt.Errorf("unknown XML encoding %q", label)
		}
		return enc.NewDecoder().Reader(input), nil
	}
	if _, err := doc.ReadFrom(r); err != nil {
		return fmt.Errorf("%w: XML does not parse: %v", ErrInvalid, err)
	}
	root := doc.Root()
	if root == nil {
		return fmt.Errorf("%w: XML has no root element", ErrInvalid)
	}
	canon, err := dsig.MakeC14N10RecCanonicalizer().Canonicalize(root)
	if err != nil {
		return fmt.Errorf("%w: canonicalise XML: %v", ErrInvalid, err)
	}
	if _, err := w.Write(canon); err != nil {
		return fmt.Errorf("write XML: %w", err)
	}
	return nil
}

var (
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", "\"", "&quot;", "\t", "&#x9;", "\n", "&#xA;", "\r", "&#xD;")
)

// EscapeText escapes character data as C14N does (& < > and CR).
func EscapeText(s string) string { return textEscaper.Replace(s) }

// jsonEscape writes s as the W3C mapping's escaped strings: a backslash doubled, and every
// character XML 1.0 cannot hold as a \uXXXX escape.
func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case !ValidXMLText(string(r)):
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// EscapeAttr escapes an attribute value as C14N does (& < " TAB LF CR).
func EscapeAttr(s string) string { return attrEscaper.Replace(s) }

// ValidXMLText reports whether s can appear in XML 1.0 character data: valid UTF-8 with no
// control characters but TAB, LF and CR.
func ValidXMLText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF) {
			return false
		}
	}
	return true
}
