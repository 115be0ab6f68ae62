// Package certdoc renders an e-certificate (电子证照) as one A4 page, the same layout in
// PDF and OFD: the title, the identifier, the data, a QR code carrying the identifier and
// the issuer's name, with room for the seal. Text uses the embedded font, subset and
// embedded in the file, so it is searchable and looks the same everywhere.
//
//	doc, base, err := certdoc.PDF(&c)   // unsigned PDF; sign with pdfsig.Prepare(doc, base, ...)
//	parts, err := certdoc.OFD(&c)       // OFD parts; seal and zip with formats/ofd
package certdoc

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"rsc.io/qr"

	"github.com/dangan-archive/dangan/formats/font"
)

// Certificate is what is printed on an e-certificate (GB/T 36903 as used).
type Certificate struct {
	Identifier     string // 证照标识
	Title          string // 证照名称, e.g. 营业执照
	Number         string // 证照编号
	Holder         string // 持证主体
	HolderCode     string // 持证主体代码
	HolderCodeType string // 111 公民身份号码, 001 统一社会信用代码
	Issuer         string // 颁发机构
	IssuerCode     string // 颁发机构代码
	IssuedAt       time.Time
	ValidFrom      time.Time
	ValidUntil     time.Time // zero: 长期 (no end)
	Fields         []Field   // further data in the order printed
	VerifyURL      string    // printed under the QR code, optional
}

// Field is one further item of a certificate's data.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// A4 in millimetres.
const (
	PageW = 210.0
	PageH = 297.0
)

// SealBox is where the seal goes (x, y from the top left, width, height, mm).
var SealBox = [4]float64{128, 205, 42, 42}

// Text is one line of text: baseline at (X, Y) mm from the page's top left, Size mm.
type Text struct {
	X, Y, Size float64
	S          string
}

// Rect is a filled rectangle (mm, top left origin).
type Rect struct{ X, Y, W, H float64 }

// Page is the laid-out certificate.
type Page struct {
	Texts []Text
	Boxes []Rect // filled: the QR code's modules
	Lines []Rect // stroked: the frame
}

// ErrUnprintable is returned (wrapped) when text has characters the embedded font lacks.
var ErrUnprintable = errors.New("characters the certificate font cannot print")

// Layout places everything on the page.
func Layout(c *Certificate) (*Page, error) {
	f := font.Default()
	p := &Page{}
	width := func(s string, size float64) float64 { return f.Width(s, size) }
	center := func(y, size float64, s string) {
		p.Texts = append(p.Texts, Text{X: (PageW - width(s, size)) / 2, Y: y, Size: size, S: s})
	}
	p.Lines = append(p.Lines, Rect{10, 10, PageW - 20, PageH - 20}, Rect{12, 12, PageW - 24, PageH - 24})
	center(42, 11, c.Title)
	center(54, 3.2, "证照标识 "+c.Identifier)

	codeType := map[string]string{"111": "公民身份号码", "001": "统一社会信用代码"}[c.HolderCodeType]
	rows := []Field{{"证照编号", c.Number}, {"持证主体", c.Holder}}
	if c.HolderCode != "" {
		rows = append(rows, Field{"持证主体代码", strings.TrimSpace(c.HolderCode + "（" + codeType + "）")})
	}
	rows = append(rows, c.Fields...)
	valid := c.ValidFrom.Format("2006年01月02日") + " 至 "
	if c.ValidUntil.IsZero() {
		valid += "长期"
	} else {
		valid += c.ValidUntil.Format("2006年01月02日")
	}
	rows = append(rows, Field{"有效期限", valid}, Field{"颁发机构", c.Issuer})

	const labelX, valueX, size, lead = 28.0, 70.0, 4.6, 7.0
	y := 78.0
	for _, r := range rows {
		if y > 195 {
			return nil, fmt.Errorf("certificate data does not fit on one page (%d rows)", len(rows))
		}
		p.Texts = append(p.Texts, Text{X: labelX, Y: y, Size: size, S: r.Name})
		for i, line := range wrap(f, r.Value, size, PageW-valueX-24) {
			if i > 0 {
				y += lead
			}
			p.Texts = append(p.Texts, Text{X: valueX, Y: y, Size: size, S: line})
		}
		y += lead + 3.5
	}

	// The QR code: the identifier, or the verification address with it.
	payload := c.Identifier
	if c.VerifyURL != "" {
		payload = c.VerifyURL + "?id=" + c.Identifier
	}
	code, err := qr.Encode(payload, qr.M)
	if err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	const qx, qy, qsize = 28.0, 208.0, 36.0
	m := qsize / float64(code.Size)
	for row := 0; row < code.Size; row++ {
		for col := 0; col < code.Size; {
			if !code.Black(col, row) {
				col++
				continue
			}
			start := col
			for col < code.Size && code.Black(col, row) {
				col++
			}
			p.Boxes = append(p.Boxes, Rect{qx + float64(start)*m, qy + float64(row)*m, float64(col-start) * m, m})
		}
	}
	p.Texts = append(p.Texts, Text{X: qx + (qsize-width("扫码核验", 3))/2, Y: qy + qsize + 5, Size: 3, S: "扫码核验"})

	issuerX := SealBox[0] + SealBox[2]/2
	p.Texts = append(p.Texts,
		Text{X: issuerX - width(c.Issuer, 4.6)/2, Y: 232, Size: 4.6, S: c.Issuer},
		Text{X: issuerX - width(c.IssuedAt.Format("2006年01月02日"), 4.2)/2, Y: 240, Size: 4.2, S: c.IssuedAt.Format("2006年01月02日")})

	var all strings.Builder
	for _, t := range p.Texts {
		all.WriteString(t.S)
	}
	if _, missing := f.Glyphs(all.String()); len(missing) > 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnprintable, string(missing))
	}
	return p, nil
}

// wrap breaks s into lines no wider than w mm at size.
func wrap(f *font.Font, s string, size, w float64) []string {
	var lines []string
	var cur []rune
	for _, r := range s {
		if r == '\n' {
			lines, cur = append(lines, string(cur)), nil
			continue
		}
		if f.Width(string(append(cur, r)), size) > w && len(cur) > 0 {
			lines, cur = append(lines, string(cur)), nil
		}
		cur = append(cur, r)
	}
	return append(lines, string(cur))
}
