package archive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/signing"
)

// The destruction register (销毁清册): every tombstone, as XML signed by the archive (an
// SM2/SM3 signature over the C14N form of <清册内容>) and as a PDF for printing.

// RegisterFormat is the register's 格式 attribute.
const RegisterFormat = "dangan-destruction-register/1"

// Register returns the signed XML register.
func (a *Archive) Register(ctx context.Context, who Principal) ([]byte, error) {
	ps, err := a.Tombstones(ctx, who)
	if err != nil {
		return nil, err
	}
	var c strings.Builder
	el := func(name, text string) { fmt.Fprintf(&c, "<%s>%s</%s>", name, formats.EscapeText(text), name) }
	c.WriteString("<清册内容>")
	el("编制单位", a.cfg.ArchiveName)
	el("编制时间", a.now().UTC().Format(time.RFC3339))
	el("条目数", strconv.Itoa(len(ps)))
	for i, p := range ps {
		t := p.Tombstone
		fmt.Fprintf(&c, `<条目 序号="%d">`, i+1)
		el("档号", p.ArchivalCode)
		el("题名", p.Title)
		el("立档单位", p.DepartmentName)
		el("统一社会信用代码", p.Department)
		el("保管期限", p.Retention)
		el("封装包标识", p.ID)
		el("封装包SM3", p.PackageSM3)
		el("鉴定依据", t.Rule)
		el("鉴定理由", t.Reason)
		el("鉴定人", t.DecidedBy)
		el("批准人", t.ApprovedBy)
		el("销毁决定", t.Decision)
		el("销毁时间", t.DestroyedAt.Format(time.RFC3339))
		el("日志事件", strconv.FormatUint(t.LogIndex, 10))
		c.WriteString("</条目>")
	}
	c.WriteString("</清册内容>")
	content, err := eep.CanonicalElement(strings.NewReader(c.String()), "清册内容")
	if err != nil {
		return nil, fmt.Errorf("canonicalise the register: %w", err)
	}
	sig, err := signing.Sign(a.pki.Archive.Key, content)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&out, "<销毁清册 格式=\"%s\">\n", RegisterFormat)
	out.Write(content)
	out.WriteString("\n<电子签名><签名算法标识>" + signing.OIDSM2WithSM3.String() + "</签名算法标识><签名结果>")
	out.WriteString(base64.StdEncoding.EncodeToString(sig))
	out.WriteString("</签名结果>")
	for _, der := range certsDER(a.pki.Archive) {
		out.WriteString("<证书>" + base64.StdEncoding.EncodeToString(der) + "</证书>")
	}
	out.WriteString("</电子签名>\n</销毁清册>\n")
	return out.Bytes(), nil
}

// RegisterInfo is what verifying a register establishes.
type RegisterInfo struct {
	Signer  string    `json:"signer"`
	Made    time.Time `json:"made"`
	Entries int       `json:"entries"`
}

// VerifyRegister checks a signed register: the signature over the C14N form of
// <清册内容>, the signer's chain at the time it was made, and the entry count.
func VerifyRegister(doc []byte, roots *smx509.CertPool) (*RegisterInfo, error) {
	var r struct {
		XMLName xml.Name `xml:"销毁清册"`
		Format  string   `xml:"格式,attr"`
		Content struct {
			Made    string     `xml:"编制时间"`
			Count   int        `xml:"条目数"`
			Entries []struct{} `xml:"条目"`
		} `xml:"清册内容"`
		Sig struct {
			Alg   string   `xml:"签名算法标识"`
			Value string   `xml:"签名结果"`
			Certs []string `xml:"证书"`
		} `xml:"电子签名"`
	}
	if err := xml.Unmarshal(doc, &r); err != nil {
		return nil, fmt.Errorf("%w: not a destruction register: %v", ErrBadSignature, err)
	}
	if r.Format != RegisterFormat || r.Sig.Alg != signing.OIDSM2WithSM3.String() {
		return nil, fmt.Errorf("%w: format %q, algorithm %q", ErrBadSignature, r.Format, r.Sig.Alg)
	}
	content, err := eep.CanonicalElement(bytes.NewReader(doc), "清册内容")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	sig, err := base64.StdEncoding.DecodeString(r.Sig.Value)
	if err != nil || len(r.Sig.Certs) == 0 {
		return nil, fmt.Errorf("%w: no signature or certificate", ErrBadSignature)
	}
	var certs []*smx509.Certificate
	for _, c := range r.Sig.Certs {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrBadSignature, err)
		}
		cert, err := smx509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrBadSignature, err)
		}
		certs = append(certs, cert)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the signer's key is not SM2", ErrBadSignature)
	}
	if err := signing.Verify(pub, content, sig); err != nil {
		return nil, fmt.Errorf("%w: the register was changed after it was signed: %v", ErrBadSignature, err)
	}
	made, err := time.Parse(time.RFC3339, r.Content.Made)
	if err != nil {
		return nil, fmt.Errorf("%w: 编制时间 %q", ErrBadSignature, r.Content.Made)
	}
	if _, err := signing.VerifyChain(certs[0], certs[1:], roots, made); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if r.Content.Count != len(r.Content.Entries) {
		return nil, fmt.Errorf("%w: 条目数 %d, %d entries", ErrBadSignature, r.Content.Count, len(r.Content.Entries))
	}
	return &RegisterInfo{Signer: certs[0].Subject.CommonName, Made: made, Entries: len(r.Content.Entries)}, nil
}

// RegisterPDF returns the register as a PDF for printing: A4 pages of text in the standard
// CJK font STSong-Light (Adobe-GB1, not embedded: every PDF reader has it), with a
// ToUnicode map so the text can be searched and copied.
func (a *Archive) RegisterPDF(ctx context.Context, who Principal) ([]byte, error) {
	ps, err := a.Tombstones(ctx, who)
	if err != nil {
		return nil, err
	}
	lines := []string{"销毁清册  " + a.cfg.ArchiveName, "编制时间 " + a.now().Format("2006-01-02 15:04") + "   条目数 " + strconv.Itoa(len(ps)), ""}
	for i, p := range ps {
		t := p.Tombstone
		lines = append(lines,
			fmt.Sprintf("%d. 档号 %s  保管期限 %s  题名 %s", i+1, p.ArchivalCode, p.Retention, p.Title),
			fmt.Sprintf("   立档单位 %s  封装包 %s", p.DepartmentName, p.ID),
			"   封装包SM3 "+p.PackageSM3,
			"   鉴定依据 "+t.Rule,
			"   鉴定理由 "+t.Reason,
			fmt.Sprintf("   鉴定人 %s  批准人 %s", t.DecidedBy, t.ApprovedBy),
			fmt.Sprintf("   销毁时间 %s  决定 %s  日志事件 %d", t.DestroyedAt.Format("2006-01-02 15:04:05"), t.Decision, t.LogIndex),
			"")
	}
	var buf bytes.Buffer
	if err := writeTextPDF(&buf, lines); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeTextPDF writes lines of text as A4 pages (10 pt, 60 lines a page, long lines wrapped).
func writeTextPDF(w io.Writer, lines []string) error {
	const perPage, perLine = 60, 52 // characters per line, CJK counted as two
	var wrapped []string
	for _, l := range lines {
		for {
			width, cut := 0, len(l)
			for i, r := range l {
				cw := 1
				if r > 0x2e7f {
					cw = 2
				}
				if width+cw > perLine*2 {
					cut = i
					break
				}
				width += cw
			}
			wrapped = append(wrapped, l[:cut])
			if cut == len(l) {
				break
			}
			l = "     " + l[cut:]
		}
	}
	var pages [][]string
	for len(wrapped) > 0 {
		n := min(perPage, len(wrapped))
		pages = append(pages, wrapped[:n])
		wrapped = wrapped[n:]
	}
	if len(pages) == 0 {
		pages = [][]string{{""}}
	}
	bw := bufio.NewWriter(w)
	var off int64
	var offs []int64
	wr := func(s string) { n, _ := bw.WriteString(s); off += int64(n) }
	obj := func(body string) {
		offs = append(offs, off)
		wr(fmt.Sprintf("%d 0 obj\n%s\nendobj\n", len(offs), body))
	}
	wr("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	// 1 catalog, 2 pages, 3 font, 4 descendant font, 5 ToUnicode, then page and content pairs.
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	var kids []string
	for i := range pages {
		kids = append(kids, fmt.Sprintf("%d 0 R", 6+2*i))
	}
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages)))
	obj("<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [4 0 R] /ToUnicode 5 0 R >>")
	obj("<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> " +
		"/FontDescriptor << /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >> /DW 1000 /W [1 95 500] >>")
	cmap := "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def " +
		"/CMapName /dangan-UCS2 def /CMapType 2 def 1 begincodespacerange <0000> <FFFF> endcodespacerange " +
		"1 beginbfrange <0000> <FFFF> <0000> endbfrange endcmap CMapName currentdict /CMap defineresource pop end end"
	obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(cmap), cmap))
	for _, page := range pages {
		var content strings.Builder
		content.WriteString("BT /F1 10 Tf 12 TL 40 800 Td\n")
		for _, l := range page {
			content.WriteString("<")
			for _, u := range utf16.Encode([]rune(l)) {
				fmt.Fprintf(&content, "%04X", u)
			}
			content.WriteString("> Tj T*\n")
		}
		content.WriteString("ET")
		s := content.String()
		objNo := len(offs) + 1
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", objNo+1))
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(s), s))
	}
	x := off
	wr(fmt.Sprintf("xref\n0 %d\n0000000000 65535 f \n", len(offs)+1))
	for _, o := range offs {
		wr(fmt.Sprintf("%010d 00000 n \n", o))
	}
	wr(fmt.Sprintf("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, x))
	return bw.Flush()
}
