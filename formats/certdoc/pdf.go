package certdoc

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/formats/font"
	"github.com/dangan-archive/dangan/formats/pdfsig"
)

const pt = 72 / 25.4 // points per millimetre

// PDF renders the certificate as a one-page PDF 1.7 with the font subset embedded
// (CIDFontType2, Identity-H, a ToUnicode map so the text extracts), and returns what an
// incremental update needs to sign it.
func PDF(c *Certificate) ([]byte, pdfsig.Base, error) {
	page, err := Layout(c)
	if err != nil {
		return nil, pdfsig.Base{}, err
	}
	f := font.Default()
	used := map[uint16]rune{}
	var content bytes.Buffer
	content.WriteString("q 0.55 0.1 0.1 RG 1.2 w\n")
	for _, l := range page.Lines {
		fmt.Fprintf(&content, "%s %s %s %s re S\n", n(l.X*pt), n((PageH-l.Y-l.H)*pt), n(l.W*pt), n(l.H*pt))
	}
	content.WriteString("Q\nq 0 0 0 rg\n")
	for _, b := range page.Boxes {
		fmt.Fprintf(&content, "%s %s %s %s re\n", n(b.X*pt), n((PageH-b.Y-b.H)*pt), n(b.W*pt), n(b.H*pt))
	}
	content.WriteString("f Q\nBT 0 0 0 rg\n")
	for _, t := range page.Texts {
		fmt.Fprintf(&content, "/F1 %s Tf 1 0 0 1 %s %s Tm <", n(t.Size*pt), n(t.X*pt), n((PageH-t.Y)*pt))
		for _, r := range t.S {
			g, _ := f.GlyphIndex(r)
			used[g] = r
			fmt.Fprintf(&content, "%04X", g)
		}
		content.WriteString("> Tj\n")
	}
	content.WriteString("ET\n")

	gids := map[uint16]bool{}
	for g := range used {
		gids[g] = true
	}
	ttf, err := f.Subset(gids)
	if err != nil {
		return nil, pdfsig.Base{}, err
	}
	tag := subsetTag(used)

	var w bytes.Buffer
	offsets := []int{0}
	obj := func(body string) {
		offsets = append(offsets, w.Len())
		fmt.Fprintf(&w, "%d 0 obj\n%s\nendobj\n", len(offsets)-1, body)
	}
	stream := func(dict string, data []byte, compress bool) {
		if compress {
			data = deflate(data)
			dict += " /Filter /FlateDecode"
		}
		offsets = append(offsets, w.Len())
		fmt.Fprintf(&w, "%d 0 obj\n<<%s /Length %d >>\nstream\n", len(offsets)-1, dict, len(data))
		w.Write(data)
		w.WriteString("\nendstream\nendobj\n")
	}
	w.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	catalog := " /Type /Catalog /Pages 2 0 R /Lang (zh-CN)"
	pageDict := fmt.Sprintf(" /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R",
		n(PageW*pt), n(PageH*pt))
	obj("<<" + catalog + " >>")                      // 1
	obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>") // 2
	obj("<<" + pageDict + " >>")                     // 3
	stream("", content.Bytes(), true)                // 4
	name := tag + "+" + f.Name
	obj(fmt.Sprintf("<< /Type /Font /Subtype /Type0 /BaseFont /%s /Encoding /Identity-H /DescendantFonts [6 0 R] /ToUnicode 9 0 R >>", name)) // 5
	obj(fmt.Sprintf("<< /Type /Font /Subtype /CIDFontType2 /BaseFont /%s /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "+
		"/FontDescriptor 7 0 R /DW 1000 /W [%s] /CIDToGIDMap /Identity >>", name, widths(f, used))) // 6
	scale := func(v int) string { return strconv.Itoa(v * 1000 / f.UnitsPerEm) }
	obj(fmt.Sprintf("<< /Type /FontDescriptor /FontName /%s /Flags 4 /FontBBox [%s %s %s %s] /ItalicAngle 0 /Ascent %s /Descent %s /CapHeight %s /StemV 80 /FontFile2 8 0 R >>",
		name, scale(f.BBox[0]), scale(f.BBox[1]), scale(f.BBox[2]), scale(f.BBox[3]), scale(f.Ascent), scale(f.Descent), scale(f.CapHeight))) // 7
	stream(fmt.Sprintf(" /Length1 %d", len(ttf)), ttf, true) // 8
	stream("", toUnicode(used), true)                        // 9
	obj(fmt.Sprintf("<< /Title %s /Author %s /Subject %s /Creator (dangan) /Producer (dangan) /CreationDate (D:%sZ) >>",
		pdfsig.TextString(c.Title+" "+c.Holder), pdfsig.TextString(c.Issuer), pdfsig.TextString(c.Identifier), c.IssuedAt.UTC().Format("20060102150405"))) // 10

	xrefAt := w.Len()
	fmt.Fprintf(&w, "xref\n0 %d\n0000000000 65535 f \n", len(offsets))
	for _, o := range offsets[1:] {
		fmt.Fprintf(&w, "%010d 00000 n \n", o)
	}
	id := sm3.Sum([]byte(c.Identifier))
	idStr := fmt.Sprintf("[<%X> <%X>]", id[:16], id[:16])
	fmt.Fprintf(&w, "trailer\n<< /Size %d /Root 1 0 R /Info 10 0 R /ID %s >>\nstartxref\n%d\n%%%%EOF\n", len(offsets), idStr, xrefAt)
	return w.Bytes(), pdfsig.Base{Catalog: 1, Page: 3, CatalogDict: catalog, PageDict: pageDict, Size: len(offsets), Info: 10, XrefAt: int64(xrefAt), ID: idStr}, nil
}

func n(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func deflate(b []byte) []byte {
	var out bytes.Buffer
	z, _ := zlib.NewWriterLevel(&out, zlib.BestCompression)
	z.Write(b)
	z.Close()
	return out.Bytes()
}

// subsetTag is the six capital letters PDF puts before a subset font's name, derived from
// the glyphs so the same text gives the same file.
func subsetTag(used map[uint16]rune) string {
	h := sm3.New()
	for _, g := range sortedGlyphs(used) {
		h.Write([]byte{byte(g >> 8), byte(g)})
	}
	sum := h.Sum(nil)
	tag := make([]byte, 6)
	for i := range tag {
		tag[i] = 'A' + sum[i]%26
	}
	return string(tag)
}

func sortedGlyphs(used map[uint16]rune) []uint16 {
	gs := make([]uint16, 0, len(used))
	for g := range used {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i] < gs[j] })
	return gs
}

func widths(f *font.Font, used map[uint16]rune) string {
	var b strings.Builder
	for _, g := range sortedGlyphs(used) {
		fmt.Fprintf(&b, "%d [%d] ", g, f.Advance(g)*1000/f.UnitsPerEm)
	}
	return strings.TrimSpace(b.String())
}

func toUnicode(used map[uint16]rune) []byte {
	var b bytes.Buffer
	b.WriteString("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n" +
		"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n" +
		"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n")
	gs := sortedGlyphs(used)
	for i := 0; i < len(gs); i += 100 {
		chunk := gs[i:min(i+100, len(gs))]
		fmt.Fprintf(&b, "%d beginbfchar\n", len(chunk))
		for _, g := range chunk {
			fmt.Fprintf(&b, "<%04X> <", g)
			for _, u := range utf16.Encode([]rune{used[g]}) {
				fmt.Fprintf(&b, "%04X", u)
			}
			b.WriteString(">\n")
		}
		b.WriteString("endbfchar\n")
	}
	b.WriteString("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n")
	return b.Bytes()
}
