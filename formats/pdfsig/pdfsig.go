// Package pdfsig adds a signature to a PDF as an incremental update and finds the
// signatures in any PDF, so they can be checked.
//
// Signing is two steps: Prepare appends the update with a signature field and a
// placeholder, the caller signs the digest of the bytes the /ByteRange covers, and Fill
// writes the CMS into the placeholder:
//
//	p, err := pdfsig.Prepare(doc, base, pdfsig.Field{Name: "issuer"})
//	h := sm3.New(); p.WriteSigned(h)
//	cms, err := signing.SignDetached(ctx, id, h.Sum(nil), now, tsa)
//	signed, err := p.Fill(cms)
//
// Reading is Find: every signature dictionary with its byte range and contents, and what
// the byte range leaves out.
package pdfsig

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Base says where the last revision of a PDF keeps what an incremental update must
// change: the catalog and the page the signature widget goes on, with their dictionaries
// (without "<<" and ">>"), the trailer's /Size and /Info, and the last xref's offset.
type Base struct {
	Catalog, Page         int
	CatalogDict, PageDict string
	Size                  int
	Info                  int
	XrefAt                int64
	ID                    string // the trailer's /ID array, e.g. "[<..> <..>]"
}

// Field describes the signature field.
type Field struct {
	Name     string     // /T, ASCII
	Reason   string     // /Reason
	Location string     // /Location
	Time     time.Time  // /M
	Rect     [4]float64 // the widget on the page; zero: invisible
	// Reserve is the room for the CMS in bytes (default 16 KiB).
	Reserve int
	// DocTimeStamp makes a document timestamp (ISO 32000-2 §12.8.5): /Contents is then an
	// RFC 3161 token over the digest of the covered bytes (ETSI.RFC3161).
	DocTimeStamp bool
}

// Prepared is a PDF with a signature placeholder.
type Prepared struct {
	data       []byte
	contentsAt int // offset of '<' of /Contents
	contentsN  int // length including '<' and '>'
}

// ErrTooLarge is returned when the CMS does not fit the room reserved for it.
var ErrTooLarge = errors.New("signature larger than the room reserved for it")

// Prepare appends an incremental update to doc: a signature value dictionary with a
// /ByteRange and a /Contents placeholder, a widget annotation on b.Page, an AcroForm with
// SigFlags 3, and new versions of the catalog and the page.
func Prepare(doc []byte, b Base, f Field) (*Prepared, error) {
	if f.Reserve == 0 {
		f.Reserve = 16 << 10
	}
	if !bytes.HasSuffix(bytes.TrimRight(doc, "\r\n"), []byte("%%EOF")) {
		return nil, errors.New("pdfsig: the document does not end with %%EOF")
	}
	var w bytes.Buffer
	w.Write(doc)
	if doc[len(doc)-1] != '\n' {
		w.WriteByte('\n')
	}
	widget, sig, form := b.Size, b.Size+1, b.Size+2
	offsets := map[int]int{}
	obj := func(n int, body string) {
		offsets[n] = w.Len()
		fmt.Fprintf(&w, "%d 0 obj\n%s\nendobj\n", n, body)
	}
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	offsets[sig] = w.Len()
	typ, sub := "Sig", "adbe.pkcs7.detached"
	if f.DocTimeStamp {
		typ, sub = "DocTimeStamp", "ETSI.RFC3161"
	}
	fmt.Fprintf(&w, "%d 0 obj\n<< /Type /%s /Filter /Adobe.PPKLite /SubFilter /%s /M %s", sig, typ, sub, pdfDate(f.Time))
	if f.Reason != "" {
		fmt.Fprintf(&w, " /Reason %s", TextString(f.Reason))
	}
	if f.Location != "" {
		fmt.Fprintf(&w, " /Location %s", TextString(f.Location))
	}
	w.WriteString(" /ByteRange ")
	rangeAt := w.Len()
	w.WriteString("[0 0000000000 0000000000 0000000000]")
	w.WriteString(" /Contents ")
	contentsAt := w.Len()
	w.WriteByte('<')
	w.Write(bytes.Repeat([]byte("0"), 2*f.Reserve))
	w.WriteByte('>')
	contentsN := w.Len() - contentsAt
	w.WriteString(" >>\nendobj\n")
	name := f.Name
	if name == "" {
		name = "Signature1"
	}
	obj(widget, fmt.Sprintf("<< /Type /Annot /Subtype /Widget /FT /Sig /T %s /V %d 0 R /F 132 /P %d 0 R /Rect [%s] >>",
		TextString(name), sig, b.Page, num4(f.Rect)))
	obj(form, fmt.Sprintf("<< /Fields [%d 0 R] /SigFlags 3 >>", widget))
	obj(b.Catalog, fmt.Sprintf("<<%s /AcroForm %d 0 R >>", b.CatalogDict, form))
	obj(b.Page, fmt.Sprintf("<<%s /Annots [%d 0 R] >>", b.PageDict, widget))

	xrefAt := w.Len()
	w.WriteString("xref\n0 1\n0000000000 65535 f \n")
	for _, n := range []int{b.Catalog, b.Page} {
		fmt.Fprintf(&w, "%d 1\n%010d 00000 n \n", n, offsets[n])
	}
	fmt.Fprintf(&w, "%d 3\n", widget)
	for _, n := range []int{widget, sig, form} {
		fmt.Fprintf(&w, "%010d 00000 n \n", offsets[n])
	}
	fmt.Fprintf(&w, "trailer\n<< /Size %d /Root %d 0 R", form+1, b.Catalog)
	if b.Info > 0 {
		fmt.Fprintf(&w, " /Info %d 0 R", b.Info)
	}
	if b.ID != "" {
		fmt.Fprintf(&w, " /ID %s", b.ID)
	}
	fmt.Fprintf(&w, " /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", b.XrefAt, xrefAt)

	data := w.Bytes()
	after := contentsAt + contentsN
	br := fmt.Sprintf("[0 %010d %010d %010d]", contentsAt, after, len(data)-after)
	copy(data[rangeAt:], br)
	return &Prepared{data: data, contentsAt: contentsAt, contentsN: contentsN}, nil
}

// WriteSigned writes the bytes the signature covers (everything but /Contents) to w.
func (p *Prepared) WriteSigned(w io.Writer) error {
	if _, err := w.Write(p.data[:p.contentsAt]); err != nil {
		return err
	}
	_, err := w.Write(p.data[p.contentsAt+p.contentsN:])
	return err
}

// Fill writes cms into the placeholder and returns the signed PDF.
func (p *Prepared) Fill(cms []byte) ([]byte, error) {
	room := (p.contentsN - 2) / 2
	if len(cms) > room {
		return nil, fmt.Errorf("%w: %d bytes, %d reserved", ErrTooLarge, len(cms), room)
	}
	out := append([]byte(nil), p.data...)
	hex.Encode(out[p.contentsAt+1:], cms)
	for i := p.contentsAt + 1 + 2*len(cms); i < p.contentsAt+p.contentsN-1; i++ {
		out[i] = '0'
	}
	return out, nil
}

func pdfDate(t time.Time) string {
	return "(D:" + t.UTC().Format("20060102150405") + "Z)"
}

func num4(r [4]float64) string {
	s := make([]string, 4)
	for i, v := range r {
		s[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strings.Join(s, " ")
}

// TextString encodes s as a PDF text string: literal when ASCII, else UTF-16BE hex with BOM.
func TextString(s string) string {
	ascii := true
	for _, r := range s {
		if r > 0x7e || r < 0x20 {
			ascii = false
			break
		}
	}
	if ascii {
		r := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
		return "(" + r.Replace(s) + ")"
	}
	var b strings.Builder
	b.WriteString("<FEFF")
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			fmt.Fprintf(&b, "%04X%04X", 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		} else {
			fmt.Fprintf(&b, "%04X", r)
		}
	}
	b.WriteString(">")
	return b.String()
}

// Signature is one signature dictionary found in a PDF.
type Signature struct {
	Offset    int      // where its /ByteRange is
	ByteRange []int64  // pairs of offset and length
	Contents  []byte   // the decoded /Contents (the CMS, perhaps zero padded)
	SubFilter string   // e.g. adbe.pkcs7.detached, ETSI.CAdES.detached
	Problems  []string // what is wrong with the byte range, if anything
	// CoversWhole reports whether the byte range covers the whole file but /Contents:
	// false when the file was changed (appended to) after signing.
	CoversWhole bool
}

var (
	byteRangeRE = regexp.MustCompile(`/ByteRange\s*\[\s*([0-9\s]+?)\s*\]`)
	subFilterRE = regexp.MustCompile(`/SubFilter\s*/([A-Za-z0-9.#_-]+)`)
)

// Find returns every signature dictionary in doc (one with a /ByteRange). It reads the
// bytes, not the object structure, so it works on damaged files and never loads objects.
func Find(doc []byte) []Signature {
	var out []Signature
	for _, m := range byteRangeRE.FindAllSubmatchIndex(doc, -1) {
		s := Signature{Offset: m[0]}
		for _, f := range strings.Fields(string(doc[m[2]:m[3]])) {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				s.Problems = append(s.Problems, "a /ByteRange number does not parse")
				break
			}
			s.ByteRange = append(s.ByteRange, v)
		}
		// The dictionary around it: its /SubFilter is nearby.
		lo, hi := max(0, m[0]-4096), min(len(doc), m[1]+4096)
		if sf := subFilterRE.FindSubmatch(doc[lo:hi]); sf != nil {
			s.SubFilter = string(sf[1])
		}
		if len(s.ByteRange) != 4 {
			s.Problems = append(s.Problems, fmt.Sprintf("/ByteRange has %d numbers, want 4", len(s.ByteRange)))
			out = append(out, s)
			continue
		}
		a, b, c, d := s.ByteRange[0], s.ByteRange[1], s.ByteRange[2], s.ByteRange[3]
		n := int64(len(doc))
		if a != 0 || b < 0 || c < a+b || d < 0 || c+d > n {
			s.Problems = append(s.Problems, fmt.Sprintf("/ByteRange [%d %d %d %d] is outside the file of %d bytes", a, b, c, d, n))
			out = append(out, s)
			continue
		}
		gap := doc[b:c]
		if len(gap) < 2 || gap[0] != '<' || gap[len(gap)-1] != '>' {
			s.Problems = append(s.Problems, "the bytes /ByteRange leaves out are not exactly the /Contents hex string")
		} else {
			raw := gap[1 : len(gap)-1]
			dec := make([]byte, len(raw)/2)
			_, err := hex.Decode(dec, raw)
			if err != nil || len(raw)%2 == 1 { // whitespace or an odd length: the slow way
				raw = bytes.Map(func(r rune) rune {
					if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
						return -1
					}
					return r
				}, raw)
				if len(raw)%2 == 1 {
					raw = append(raw, '0')
				}
				dec = make([]byte, len(raw)/2)
				_, err = hex.Decode(dec, raw)
			}
			if err != nil {
				s.Problems = append(s.Problems, "/Contents is not a hex string")
			} else {
				s.Contents = dec
			}
			if !contentsNear(doc, int(b)) {
				s.Problems = append(s.Problems, "the bytes /ByteRange leaves out are not the value of a /Contents key")
			}
		}
		s.CoversWhole = c+d == n
		out = append(out, s)
	}
	return out
}

// contentsNear reports whether the '<' at at is the value of a /Contents key.
func contentsNear(doc []byte, at int) bool {
	i := at - 1
	for i >= 0 && (doc[i] == ' ' || doc[i] == '\n' || doc[i] == '\r' || doc[i] == '\t') {
		i--
	}
	return i >= 8 && string(doc[i-8:i+1]) == "/Contents"
}

// WriteCovered writes the bytes a signature's byte range covers to w.
func (s *Signature) WriteCovered(doc []byte, w io.Writer) error {
	for i := 0; i+1 < len(s.ByteRange); i += 2 {
		if _, err := w.Write(doc[s.ByteRange[i] : s.ByteRange[i]+s.ByteRange[i+1]]); err != nil {
			return err
		}
	}
	return nil
}
