// Package ofd writes OFD packages (GB/T 33190) and reads and checks the signatures in any
// OFD: each signature's references (the digest of every file it covers) and its signed
// value, for the caller to verify with signing/ses or signing.
//
//	parts := []ofd.Part{{Name: "OFD.xml", Data: …}, …}
//	signed, err := ofd.Seal(parts, ofd.SealOptions{…, Sign: func(sm3 []byte) ([]byte, error) {…}})
//	err = ofd.Write(w, signed)
//	sigs, err := ofd.ReadSignatures(zr)
package ofd

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/formats"
)

// NS is the OFD namespace.
const NS = "http://www.ofdspec.org/2016"

// Part is one file of an OFD package.
type Part struct {
	Name string // path inside the package, no leading slash
	Data []byte
}

// Write zips parts (deflated) to w.
func Write(w io.Writer, parts []Part) error {
	z := zip.NewWriter(w)
	for _, p := range parts {
		f, err := z.CreateHeader(&zip.FileHeader{Name: p.Name, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return fmt.Errorf("ofd: %s: %w", p.Name, err)
		}
		if _, err := f.Write(p.Data); err != nil {
			return fmt.Errorf("ofd: %s: %w", p.Name, err)
		}
	}
	return z.Close()
}

// SealOptions says how to seal a document.
type SealOptions struct {
	Provider  string    // ProviderName
	Version   string    // the provider's version
	Time      time.Time // SignatureDateTime
	PageID    string    // the page the stamp goes on (its ID in Document.xml)
	Boundary  [4]float64
	SealEntry []byte // Seal.esl, written beside the signature when given
	// Sign returns the SignedValue.dat for the SM3 of Signature.xml and the path of it.
	Sign func(signatureXMLSM3 []byte, property string) ([]byte, error)
}

// Seal adds an electronic seal (Type="Seal") over every part: Signature.xml with an SM3
// reference per file, SignedValue.dat from opts.Sign, Seal.esl, and Signatures.xml. parts
// must hold OFD.xml; its DocBody gets a <Signatures> entry when it has none.
func Seal(parts []Part, opts SealOptions) ([]Part, error) {
	const dir = "Doc_0/Signs/Sign_0/"
	out := make([]Part, 0, len(parts)+4)
	found := false
	for _, p := range parts {
		if p.Name == "OFD.xml" {
			found = true
			if !bytes.Contains(p.Data, []byte("Signatures>")) {
				i := bytes.Index(p.Data, []byte("</ofd:DocBody>"))
				if i < 0 {
					return nil, errors.New("ofd: OFD.xml has no </ofd:DocBody>")
				}
				d := append(append(append([]byte(nil), p.Data[:i]...), "<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>"...), p.Data[i:]...)
				p = Part{Name: p.Name, Data: d}
			}
		}
		out = append(out, p)
	}
	if !found {
		return nil, errors.New("ofd: no OFD.xml")
	}
	if opts.SealEntry != nil {
		out = append(out, Part{Name: dir + "Seal.esl", Data: opts.SealEntry})
	}
	var sx strings.Builder
	sx.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&sx, `<ofd:Signature xmlns:ofd="%s"><ofd:SignedInfo>`, NS)
	fmt.Fprintf(&sx, `<ofd:Provider ProviderName="%s" Version="%s" Company="dangan"/>`, formats.EscapeAttr(opts.Provider), formats.EscapeAttr(opts.Version))
	sx.WriteString(`<ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod>`)
	fmt.Fprintf(&sx, `<ofd:SignatureDateTime>%s</ofd:SignatureDateTime>`, opts.Time.UTC().Format("20060102150405Z"))
	sx.WriteString(`<ofd:References CheckMethod="1.2.156.10197.1.401">`)
	for _, p := range out {
		sum := sm3.Sum(p.Data)
		fmt.Fprintf(&sx, `<ofd:Reference FileRef="/%s"><ofd:CheckValue>%s</ofd:CheckValue></ofd:Reference>`, formats.EscapeAttr(p.Name), base64.StdEncoding.EncodeToString(sum[:]))
	}
	sx.WriteString(`</ofd:References>`)
	fmt.Fprintf(&sx, `<ofd:StampAnnot ID="1" PageRef="%s" Boundary="%g %g %g %g"/>`, formats.EscapeAttr(opts.PageID), opts.Boundary[0], opts.Boundary[1], opts.Boundary[2], opts.Boundary[3])
	if opts.SealEntry != nil {
		fmt.Fprintf(&sx, `<ofd:Seal><ofd:BaseLoc>/%sSeal.esl</ofd:BaseLoc></ofd:Seal>`, dir)
	}
	fmt.Fprintf(&sx, `</ofd:SignedInfo><ofd:SignedValue>/%sSignedValue.dat</ofd:SignedValue></ofd:Signature>`, dir)
	sigXML := []byte(sx.String())
	sum := sm3.Sum(sigXML)
	value, err := opts.Sign(sum[:], "/"+dir+"Signature.xml")
	if err != nil {
		return nil, fmt.Errorf("ofd: sign: %w", err)
	}
	signatures := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<ofd:Signatures xmlns:ofd="%s"><ofd:MaxSignId>1</ofd:MaxSignId><ofd:Signature ID="1" Type="Seal" BaseLoc="/%sSignature.xml"/></ofd:Signatures>`, NS, dir)
	return append(out,
		Part{Name: dir + "Signature.xml", Data: sigXML},
		Part{Name: dir + "SignedValue.dat", Data: value},
		Part{Name: "Doc_0/Signs/Signatures.xml", Data: []byte(signatures)}), nil
}

// Reference is one file a signature covers, and whether its digest matched.
type Reference struct {
	File     string `json:"file"`
	Path     string `json:"path"`            // the package path File resolves to
	Expected string `json:"expected"`        // base64, as in Signature.xml
	Found    string `json:"found,omitempty"` // base64 of the file as it is
	Match    bool   `json:"match"`
	Problem  string `json:"problem,omitempty"`
}

// Signature is one signature of an OFD, read but not yet verified.
type Signature struct {
	ID           string
	Type         string // Seal or Sign
	Path         string // of Signature.xml
	Provider     string
	Method       string // SignatureMethod
	DateTime     string
	CheckMethod  string
	References   []Reference
	SignatureXML []byte // the exact bytes, whose SM3 the signed value covers
	SignedValue  []byte
	SealFile     []byte   // Seal.esl, if the signature names one
	Problems     []string // what could not be read
	// Unreferenced lists package files the signature does not cover: files added after
	// signing. The signatures' own files (Signatures.xml, each Signature.xml, signed value
	// and seal) and OFD.xml are not listed: the format keeps them outside (OFD.xml gains its
	// Signatures entry when a document is signed).
	Unreferenced []string
	// OFDXMLOutside reports that OFD.xml is not among the references; DocRoots are the
	// document roots it names, which the signature must cover for OFD.xml to be harmless.
	OFDXMLOutside bool
	DocRoots      []string
	// Digest is the CheckMethod's algorithm (SM3, SHA-1, SHA-256); Weak for SHA-1.
	Digest string
	Weak   bool
}

// checkMethods are the reference digests issuers use, by the names and OIDs they write.
var checkMethods = map[string]struct {
	name string
	new  func() hash.Hash
	weak bool
}{
	"": {"SM3", sm3.New, false}, "sm3": {"SM3", sm3.New, false}, "1.2.156.10197.1.401": {"SM3", sm3.New, false},
	"sha1": {"SHA-1", sha1.New, true}, "sha-1": {"SHA-1", sha1.New, true}, "1.3.14.3.2.26": {"SHA-1", sha1.New, true},
	"sha256": {"SHA-256", sha256.New, false}, "sha-256": {"SHA-256", sha256.New, false}, "2.16.840.1.101.3.4.2.1": {"SHA-256", sha256.New, false},
}

type signaturesXML struct {
	Signatures []struct {
		ID      string `xml:"ID,attr"`
		Type    string `xml:"Type,attr"`
		BaseLoc string `xml:"BaseLoc,attr"`
	} `xml:"Signature"`
}

type signatureXML struct {
	SignedInfo struct {
		Provider struct {
			Name    string `xml:"ProviderName,attr"`
			Company string `xml:"Company,attr"`
		} `xml:"Provider"`
		SignatureMethod   string `xml:"SignatureMethod"`
		SignatureDateTime string `xml:"SignatureDateTime"`
		References        struct {
			CheckMethod string `xml:"CheckMethod,attr"`
			Reference   []struct {
				FileRef    string `xml:"FileRef,attr"`
				CheckValue string `xml:"CheckValue"`
			} `xml:"Reference"`
		} `xml:"References"`
		Seal struct {
			BaseLoc string `xml:"BaseLoc"`
		} `xml:"Seal"`
	} `xml:"SignedInfo"`
	SignedValue string `xml:"SignedValue"`
}

// ErrNoSignatures is returned when the OFD has no signatures.
var ErrNoSignatures = errors.New("the OFD has no signatures")

// MaxEntry bounds the size of any one file read from an OFD, MaxInflated the bytes
// inflated for one OFD's references together.
const (
	MaxEntry    = 64 << 20
	MaxInflated = 256 << 20
)

// ReadSignatures reads every signature of an OFD and checks each reference's digest.
func ReadSignatures(z *zip.Reader) ([]Signature, error) {
	files := map[string]*zip.File{}
	for _, f := range z.File {
		if strings.HasSuffix(f.Name, "/") || f.FileInfo().IsDir() {
			continue // directory entries
		}
		files[strings.TrimPrefix(path.Clean("/"+f.Name), "/")] = f
	}
	read := func(name string) ([]byte, error) {
		f, ok := files[strings.TrimPrefix(path.Clean("/"+name), "/")]
		if !ok {
			return nil, fmt.Errorf("%s is not in the package", name)
		}
		if f.UncompressedSize64 > MaxEntry {
			return nil, fmt.Errorf("%s is larger than %d bytes", name, MaxEntry)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, MaxEntry+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return b, nil
	}
	// digest hashes a referenced file as it decompresses: files are not held in memory.
	// A file over MaxEntry, or more than MaxInflated for the whole package, is not hashed:
	// a small upload must not make the verifier inflate gigabytes.
	budget := int64(MaxInflated)
	digest := func(name string, newHash func() hash.Hash) ([]byte, error) {
		f, ok := files[strings.TrimPrefix(path.Clean("/"+name), "/")]
		if !ok {
			return nil, fmt.Errorf("%s is not in the package", name)
		}
		if f.UncompressedSize64 > MaxEntry || int64(f.UncompressedSize64) > budget {
			return nil, fmt.Errorf("%s is larger than this verifier inflates (%d bytes; %d per file, %d per package)", name, f.UncompressedSize64, MaxEntry, MaxInflated)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer rc.Close()
		h := newHash()
		n, err := io.Copy(h, io.LimitReader(rc, budget+1))
		budget -= n
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if budget < 0 {
			return nil, fmt.Errorf("%s: the package inflates to more than %d bytes", name, MaxInflated)
		}
		return h.Sum(nil), nil
	}
	ofdXML, err := read("OFD.xml")
	if err != nil {
		return nil, err
	}
	var root struct {
		DocBody []struct {
			DocRoot    string `xml:"DocRoot"`
			Signatures string `xml:"Signatures"`
		} `xml:"DocBody"`
	}
	if err := xml.Unmarshal(ofdXML, &root); err != nil {
		return nil, fmt.Errorf("OFD.xml: %w", err)
	}
	var out []Signature
	covered := map[string]bool{"OFD.xml": true}
	var docRoots []string
	for _, body := range root.DocBody {
		docRoots = append(docRoots, resolve("", body.DocRoot))
	}
	for _, body := range root.DocBody {
		if body.Signatures == "" {
			continue
		}
		base := path.Dir(strings.TrimPrefix(body.DocRoot, "/"))
		listPath := resolve("", body.Signatures)
		b, err := read(listPath)
		if err != nil {
			return nil, err
		}
		covered[listPath] = true
		var list signaturesXML
		if err := xml.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("%s: %w", listPath, err)
		}
		for _, e := range list.Signatures {
			s := Signature{ID: e.ID, Type: e.Type, Path: resolve(path.Dir(listPath), e.BaseLoc)}
			if s.Type == "" {
				s.Type = "Seal" // the schema's default
			}
			s.read(read, digest, covered, base)
			s.DocRoots = docRoots
			s.OFDXMLOutside = !s.Covers("OFD.xml")
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoSignatures
	}
	var extra []string
	for name := range files {
		if !covered[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for i := range out {
		for _, name := range extra {
			if !out[i].Covers(name) {
				out[i].Unreferenced = append(out[i].Unreferenced, name)
			}
		}
	}
	return out, nil
}

// Covers reports whether the signature references name (a package path).
func (s *Signature) Covers(name string) bool {
	for _, r := range s.References {
		if r.Path == name {
			return true
		}
	}
	return false
}

func (s *Signature) read(read func(string) ([]byte, error), digest func(string, func() hash.Hash) ([]byte, error), covered map[string]bool, docDir string) {
	var err error
	if s.SignatureXML, err = read(s.Path); err != nil {
		s.Problems = append(s.Problems, err.Error())
		return
	}
	covered[s.Path] = true
	var sx signatureXML
	if err := xml.Unmarshal(s.SignatureXML, &sx); err != nil {
		s.Problems = append(s.Problems, fmt.Sprintf("%s: %v", s.Path, err))
		return
	}
	si := sx.SignedInfo
	s.Provider, s.Method, s.DateTime = si.Provider.Name, si.SignatureMethod, si.SignatureDateTime
	s.CheckMethod = si.References.CheckMethod
	dir := path.Dir(s.Path)
	if sx.SignedValue == "" {
		s.Problems = append(s.Problems, "no SignedValue")
	} else {
		p := resolve(dir, sx.SignedValue)
		covered[p] = true
		if s.SignedValue, err = read(p); err != nil {
			s.Problems = append(s.Problems, err.Error())
		}
	}
	if si.Seal.BaseLoc != "" {
		p := resolve(dir, si.Seal.BaseLoc)
		covered[p] = true
		if s.SealFile, err = read(p); err != nil {
			s.Problems = append(s.Problems, err.Error())
		}
	}
	m, known := checkMethods[strings.ToLower(strings.TrimSpace(s.CheckMethod))]
	s.Digest, s.Weak = m.name, m.weak
	for _, r := range si.References.Reference {
		name := resolve(docDir, r.FileRef)
		ref := Reference{File: r.FileRef, Path: name, Expected: strings.TrimSpace(r.CheckValue)}
		if !known {
			ref.Problem = "check method " + s.CheckMethod + " is not a digest accepted here (SM3, SHA-256, SHA-1)"
			if strings.Contains(strings.ToLower(s.CheckMethod), "md5") {
				ref.Problem = "check method MD5 is broken: a changed file can keep its digest"
			}
		} else if sum, err := digest(name, m.new); err != nil {
			ref.Problem = err.Error()
		} else {
			ref.Found = base64.StdEncoding.EncodeToString(sum)
			ref.Match = ref.Found == ref.Expected
		}
		s.References = append(s.References, ref)
	}
}

// resolve turns a location in an OFD into a package path: absolute ("/Doc_0/…") from the
// package root, relative from dir.
func resolve(dir, loc string) string {
	loc = strings.TrimSpace(loc)
	if strings.HasPrefix(loc, "/") {
		return strings.TrimPrefix(path.Clean(loc), "/")
	}
	return strings.TrimPrefix(path.Clean("/"+path.Join(dir, loc)), "/")
}
