package certdoc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/font"
	"github.com/dangan-archive/dangan/formats/ofd"
)

// OFDPageID is the ID of the certificate's page in Document.xml, where the seal goes.
const OFDPageID = "1"

// OFD renders the certificate as the parts of an unsigned OFD: the same layout as the PDF,
// the font subset embedded under Res, and the certificate's data in DocInfo/CustomDatas.
func OFD(c *Certificate) ([]ofd.Part, error) {
	page, err := Layout(c)
	if err != nil {
		return nil, err
	}
	f := font.Default()
	var used []rune
	var body strings.Builder
	id := 10
	next := func() int { id++; return id }
	fmt.Fprintf(&body, `<ofd:PathObject ID="%d" Boundary="0 0 %g %g" LineWidth="0.42"><ofd:StrokeColor Value="140 26 26"/><ofd:AbbreviatedData>`, next(), PageW, PageH)
	for _, l := range page.Lines {
		fmt.Fprintf(&body, "M %s %s L %s %s L %s %s L %s %s C ", m(l.X), m(l.Y), m(l.X+l.W), m(l.Y), m(l.X+l.W), m(l.Y+l.H), m(l.X), m(l.Y+l.H))
	}
	body.WriteString(`</ofd:AbbreviatedData></ofd:PathObject>`)
	fmt.Fprintf(&body, `<ofd:PathObject ID="%d" Boundary="0 0 %g %g" Stroke="false" Fill="true"><ofd:FillColor Value="0 0 0"/><ofd:AbbreviatedData>`, next(), PageW, PageH)
	for _, b := range page.Boxes {
		fmt.Fprintf(&body, "M %s %s L %s %s L %s %s L %s %s C ", m(b.X), m(b.Y), m(b.X+b.W), m(b.Y), m(b.X+b.W), m(b.Y+b.H), m(b.X), m(b.Y+b.H))
	}
	body.WriteString(`</ofd:AbbreviatedData></ofd:PathObject>`)
	for _, t := range page.Texts {
		var deltas []string
		runes := []rune(t.S)
		for i, r := range runes {
			g, _ := f.GlyphIndex(r)
			used = append(used, r)
			if i < len(runes)-1 {
				deltas = append(deltas, m(float64(f.Advance(g))*t.Size/float64(f.UnitsPerEm)))
			}
		}
		fmt.Fprintf(&body, `<ofd:TextObject ID="%d" Boundary="0 0 %g %g" Font="2" Size="%s"><ofd:FillColor Value="0 0 0"/><ofd:TextCode X="%s" Y="%s"`,
			next(), PageW, PageH, m(t.Size), m(t.X), m(t.Y))
		if len(deltas) > 0 {
			fmt.Fprintf(&body, ` DeltaX="%s"`, strings.Join(deltas, " "))
		}
		fmt.Fprintf(&body, `>%s</ofd:TextCode></ofd:TextObject>`, formats.EscapeText(t.S))
	}
	// OFD readers find glyphs through the font's character map: a compact subset does.
	ttf, err := f.CompactSubset(used)
	if err != nil {
		return nil, err
	}
	const head = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	docID := sm3.Sum([]byte(c.Identifier))
	var custom strings.Builder
	for _, kv := range [][2]string{{"证照标识", c.Identifier}, {"证照名称", c.Title}, {"证照编号", c.Number}, {"持证主体", c.Holder},
		{"颁发机构", c.Issuer}, {"颁发机构代码", c.IssuerCode}, {"颁发日期", c.IssuedAt.Format("2006-01-02")}} {
		fmt.Fprintf(&custom, `<ofd:CustomData Name="%s">%s</ofd:CustomData>`, kv[0], formats.EscapeText(kv[1]))
	}
	ofdXML := fmt.Sprintf(head+`<ofd:OFD xmlns:ofd="%s" Version="1.1" DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>%x</ofd:DocID>`+
		`<ofd:Title>%s</ofd:Title><ofd:Author>%s</ofd:Author><ofd:CreationDate>%s</ofd:CreationDate><ofd:Creator>dangan</ofd:Creator>`+
		`<ofd:CustomDatas>%s</ofd:CustomDatas></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>`,
		ofd.NS, docID[:16], formats.EscapeText(c.Title), formats.EscapeText(c.Issuer), c.IssuedAt.Format("2006-01-02"), custom.String())
	document := fmt.Sprintf(head+`<ofd:Document xmlns:ofd="%s"><ofd:CommonData><ofd:MaxUnitID>%d</ofd:MaxUnitID>`+
		`<ofd:PageArea><ofd:PhysicalBox>0 0 %g %g</ofd:PhysicalBox></ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData>`+
		`<ofd:Pages><ofd:Page ID="%s" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>`, ofd.NS, id, PageW, PageH, OFDPageID)
	res := fmt.Sprintf(head+`<ofd:Res xmlns:ofd="%s" BaseLoc="Res"><ofd:Fonts><ofd:Font ID="2" FontName="%s" FamilyName="%s">`+
		`<ofd:FontFile>font_2.ttf</ofd:FontFile></ofd:Font></ofd:Fonts></ofd:Res>`, ofd.NS, f.Name, f.Name)
	content := fmt.Sprintf(head+`<ofd:Page xmlns:ofd="%s"><ofd:Content><ofd:Layer ID="3">%s</ofd:Layer></ofd:Content></ofd:Page>`, ofd.NS, body.String())
	return []ofd.Part{
		{Name: "OFD.xml", Data: []byte(ofdXML)},
		{Name: "Doc_0/Document.xml", Data: []byte(document)},
		{Name: "Doc_0/PublicRes.xml", Data: []byte(res)},
		{Name: "Doc_0/Res/font_2.ttf", Data: ttf},
		{Name: "Doc_0/Pages/Page_0/Content.xml", Data: []byte(content)},
	}, nil
}

func m(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
