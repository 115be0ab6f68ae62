package formats

import (
	"archive/zip"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/beevik/etree"
)

// maxOFDXML bounds each XML part of an OFD read into memory (ZIP bombs stop here).
const maxOFDXML = 16 << 20

// OFDInfo is what the structure check learned.
type OFDInfo struct {
	DocType  string // "OFD" or "OFD-A"
	Pages    int
	Signed   bool
	Warnings []string
}

type ofdPackage struct {
	files   map[string]*zip.File
	lower   map[string]string
	info    *OFDInfo
	problem []string
}

// CheckOFD checks an OFD's structure (GB/T 33190): OFD.xml parses with DocBody and DocRoot,
// and every entry referenced from the document, its pages, resources and signatures exists.
// Fonts that are not embedded, and references that match an entry only when case is
// ignored, are warnings.
func CheckOFD(r io.ReaderAt, size int64) (*OFDInfo, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: OFD is not a readable ZIP: %v", ErrInvalid, err)
	}
	p := &ofdPackage{files: map[string]*zip.File{}, lower: map[string]string{}, info: &OFDInfo{}}
	for _, f := range zr.File {
		name := strings.TrimPrefix(f.Name, "/")
		if f.Flags&0x1 != 0 {
			return nil, fmt.Errorf("%w: OFD entry %s is encrypted", ErrEncrypted, name)
		}
		p.files[name] = f
		p.lower[strings.ToLower(name)] = name
	}
	root, err := p.xml("OFD.xml")
	if err != nil {
		return nil, err
	}
	ofd := root.Root()
	if ofd == nil || ofd.Tag != "OFD" {
		return nil, fmt.Errorf("%w: OFD.xml has no ofd:OFD root element", ErrInvalid)
	}
	p.info.DocType = ofd.SelectAttrValue("DocType", "OFD")
	body := ofd.FindElement("./DocBody")
	if body == nil {
		return nil, fmt.Errorf("%w: OFD.xml has no DocBody", ErrInvalid)
	}
	docRootEl := body.FindElement("./DocRoot")
	if docRootEl == nil || strings.TrimSpace(docRootEl.Text()) == "" {
		return nil, fmt.Errorf("%w: OFD.xml DocBody has no DocRoot", ErrInvalid)
	}
	docPath, ok := p.resolve("", docRootEl.Text(), "DocRoot")
	if !ok {
		return nil, p.err()
	}
	doc, err := p.xml(docPath)
	if err != nil {
		return nil, err
	}
	docDir := path.Dir(docPath)
	if sig := body.FindElement("./Signatures"); sig != nil && strings.TrimSpace(sig.Text()) != "" {
		p.info.Signed = true
		if sp, ok := p.resolve("", sig.Text(), "Signatures"); ok {
			p.checkSignatures(sp)
		}
	}
	d := doc.Root()
	for _, tag := range []string{"./CommonData/PublicRes", "./CommonData/DocumentRes"} {
		for _, el := range d.FindElements(tag) {
			if rp, ok := p.resolve(docDir, el.Text(), el.Tag); ok {
				p.checkRes(rp)
			}
		}
	}
	for _, tp := range d.FindElements("./CommonData/TemplatePage") {
		p.resolve(docDir, tp.SelectAttrValue("BaseLoc", ""), "TemplatePage")
	}
	pages := d.FindElements("./Pages/Page")
	if len(pages) == 0 {
		p.problem = append(p.problem, "the document has no pages")
	}
	for _, pg := range pages {
		if pp, ok := p.resolve(docDir, pg.SelectAttrValue("BaseLoc", ""), "Page"); ok {
			if content, err := p.xml(pp); err != nil {
				p.problem = append(p.problem, err.Error())
			} else if pr := content.Root(); pr != nil {
				for _, el := range pr.FindElements("./PageRes") {
					if rp, ok := p.resolve(path.Dir(pp), el.Text(), "PageRes"); ok {
						p.checkRes(rp)
					}
				}
			}
		}
		p.info.Pages++
	}
	for _, tag := range []string{"./Attachments", "./Annotations", "./CustomTags"} {
		for _, el := range d.FindElements(tag) {
			p.resolve(docDir, el.Text(), el.Tag)
		}
	}
	if len(p.problem) > 0 {
		return nil, p.err()
	}
	return p.info, nil
}

func (p *ofdPackage) err() error {
	return fmt.Errorf("%w: OFD structure: %s", ErrInvalid, strings.Join(p.problem, "; "))
}

// resolve finds the entry a reference names: absolute from the package root, or relative
// to base (falling back to the root, as some producers write). It records a problem when
// there is none.
func (p *ofdPackage) resolve(base, ref, what string) (string, bool) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		p.problem = append(p.problem, fmt.Sprintf("%s has an empty location", what))
		return "", false
	}
	var candidates []string
	if strings.HasPrefix(ref, "/") {
		candidates = []string{path.Clean(strings.TrimPrefix(ref, "/"))}
	} else {
		candidates = []string{path.Clean(path.Join(base, ref)), path.Clean(ref)}
	}
	for _, c := range candidates {
		if _, ok := p.files[c]; ok {
			return c, true
		}
	}
	for _, c := range candidates {
		if actual, ok := p.lower[strings.ToLower(c)]; ok {
			p.info.Warnings = append(p.info.Warnings, fmt.Sprintf("%s %q is stored as %q: readers that match case will not find it", what, ref, actual))
			return actual, true
		}
	}
	p.problem = append(p.problem, fmt.Sprintf("%s %q is referenced but not in the package", what, ref))
	return "", false
}

func (p *ofdPackage) xml(name string) (*etree.Document, error) {
	f, ok := p.files[name]
	if !ok {
		return nil, fmt.Errorf("%w: OFD has no %s", ErrInvalid, name)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: OFD entry %s: %v", ErrInvalid, name, err)
	}
	defer rc.Close()
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = func(label string, input io.Reader) (io.Reader, error) { return input, nil }
	if _, err := doc.ReadFrom(io.LimitReader(rc, maxOFDXML)); err != nil {
		return nil, fmt.Errorf("%w: OFD entry %s does not parse: %v", ErrInvalid, name, err)
	}
	return doc, nil
}

func (p *ofdPackage) checkRes(resPath string) {
	doc, err := p.xml(resPath)
	if err != nil {
		p.problem = append(p.problem, err.Error())
		return
	}
	res := doc.Root()
	if res == nil {
		return
	}
	dir := path.Join(path.Dir(resPath), res.SelectAttrValue("BaseLoc", ""))
	for _, font := range res.FindElements("./Fonts/Font") {
		ff := font.FindElement("./FontFile")
		if ff == nil || strings.TrimSpace(ff.Text()) == "" {
			p.info.Warnings = append(p.info.Warnings, fmt.Sprintf("font %q is not embedded", font.SelectAttrValue("FontName", "?")))
			continue
		}
		p.resolve(dir, ff.Text(), "FontFile")
	}
	for _, mm := range res.FindElements("./MultiMedias/MultiMedia") {
		if mf := mm.FindElement("./MediaFile"); mf != nil {
			p.resolve(dir, mf.Text(), "MediaFile")
		}
	}
}

func (p *ofdPackage) checkSignatures(sigsPath string) {
	doc, err := p.xml(sigsPath)
	if err != nil {
		p.problem = append(p.problem, err.Error())
		return
	}
	if doc.Root() == nil {
		return
	}
	for _, s := range doc.Root().FindElements("./Signature") {
		sp, ok := p.resolve(path.Dir(sigsPath), s.SelectAttrValue("BaseLoc", ""), "Signature")
		if !ok {
			continue
		}
		sdoc, err := p.xml(sp)
		if err != nil {
			p.problem = append(p.problem, err.Error())
			continue
		}
		if sv := sdoc.Root().FindElement("./SignedValue"); sv != nil {
			p.resolve(path.Dir(sp), sv.Text(), "SignedValue")
		}
	}
}
