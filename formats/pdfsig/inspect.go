package pdfsig

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Inspect reads the structure around every signature of a PDF: which revision each signs,
// whether its /ByteRange covers exactly that revision but its own /Contents, and what the
// incremental updates after it changed. It reads the bytes and the cross-reference
// sections only; it never renders or follows more than the objects the updates define.

// Change is one object an incremental update after a signature defines.
type Change struct {
	Revision int    `json:"revision"` // 1-based
	Object   int    `json:"object"`
	Kind     string `json:"kind"` // annotation, form field, signature, validation data, metadata, page annotations, catalog, new object, content …
	Allowed  bool   `json:"allowed"`
	Detail   string `json:"detail"`
}

// SignatureInfo is a signature and what surrounds it.
type SignatureInfo struct {
	Signature
	Object    int      // the signature dictionary's object number
	Type      string   // Sig or DocTimeStamp
	Name      string   // /Name (the signer's name as the signer wrote it)
	Reason    string   // /Reason
	Time      string   // /M, as written
	Certs     [][]byte // /Cert (adbe.x509.rsa_sha1): the signer's certificate first
	Revision  int      // the 1-based revision the signature signs; 0 when its range ends at none
	Revisions int      // how many revisions the file has
	// Changes after the signed revision, in order; Permitted reports whether each is of a
	// kind an approval signature allows (annotations, form fill, later signatures and
	// timestamps, validation data, metadata).
	Changes   []Change
	Permitted bool
}

// Document is the signatures of a PDF with the file's validation data.
type Document struct {
	Revisions  int
	Signatures []SignatureInfo
	DSS        *DSS // the last revision's document security store, when there is one
}

// DSS is a document security store (ISO 32000-2 §12.8.4.3): validation data a signer or a
// later archive timestamp added.
type DSS struct {
	Certs, CRLs, OCSPs [][]byte
}

var objHeaderEnd = regexp.MustCompile(`(?:^|[^0-9])(\d+)\s+(\d+)\s+$`)

// objectStart finds the "N G obj" that opens the object holding offset: the nearest
// before it, at most 4 MiB back. It steps back over "obj" keywords instead of matching
// the whole prefix, so its cost is the distance, not the file's size.
func objectStart(doc []byte, offset int) int {
	lo := max(0, offset-(4<<20))
	for end := offset; end > lo; {
		i := bytes.LastIndex(doc[lo:end], []byte("obj"))
		if i < 0 {
			return -1
		}
		i += lo
		end = i
		if i > 0 && doc[i-1] != ' ' && doc[i-1] != '\n' && doc[i-1] != '\r' && doc[i-1] != '\t' {
			continue // "endobj", or "obj" inside a name or a string
		}
		head := doc[max(0, i-24):i]
		if m := objHeaderEnd.FindSubmatchIndex(head); m != nil {
			return max(0, i-24) + m[2]
		}
	}
	return -1
}

// Inspect finds every signature of doc with its revision and the changes after it.
func Inspect(doc []byte) *Document {
	inf := &inflater{left: maxInflated}
	revs := revisions(doc, inf)
	rs := &resolver{inf: inf, doc: doc, revs: revs}
	d := &Document{Revisions: len(revs)}
	found := Find(doc)
	if len(found) > maxSignatures {
		found = found[:maxSignatures]
	}
	for _, s := range found {
		si := SignatureInfo{Signature: s, Revisions: len(revs), Type: "Sig"}
		rs.describe(&si)
		if len(s.ByteRange) == 4 {
			end := s.ByteRange[2] + s.ByteRange[3]
			for k, r := range revs {
				eof := bytes.LastIndex(doc[:r.End], []byte("%%EOF")) + len("%%EOF")
				if end >= int64(eof) && end <= r.End {
					si.Revision = k + 1
					break
				}
			}
			if si.Revision == 0 && len(si.Problems) == 0 {
				si.Problems = append(si.Problems, fmt.Sprintf("/ByteRange ends at byte %d, which is not the end of a revision (a %%%%EOF)", end))
			}
		}
		si.Permitted = true
		if si.Revision > 0 {
			for j := si.Revision; j < len(revs); j++ {
				for _, c := range rs.changes(j, si.Revision-1) {
					si.Changes = append(si.Changes, c)
					si.Permitted = si.Permitted && c.Allowed
				}
			}
		}
		d.Signatures = append(d.Signatures, si)
	}
	if len(revs) > 0 {
		d.DSS = rs.dss(len(revs) - 1)
	}
	return d
}

// describe reads the signature dictionary around a /ByteRange: its type, names and
// certificates, and checks that the excluded gap is this dictionary's own /Contents.
func (rs *resolver) describe(si *SignatureInfo) {
	at := objectStart(rs.doc, si.Offset)
	if at < 0 {
		return
	}
	num, v, err := indirect(rs.doc, at)
	if err != nil || v.kind != kDict {
		return
	}
	if _, ok := v.dict["ByteRange"]; !ok {
		return // the /ByteRange is not this object's
	}
	si.Object = num
	if t := v.name("Type"); t != "" {
		si.Type = t
	}
	if sf := v.name("SubFilter"); sf != "" {
		si.SubFilter = sf
	}
	for _, k := range v.dups {
		if k == "Contents" || k == "ByteRange" {
			si.Problems = append(si.Problems, "the signature dictionary has /"+k+" more than once: which one was signed is ambiguous")
		}
	}
	str := func(k string) string {
		if x, ok := v.dict[k]; ok && x.kind == kString {
			return x.s
		}
		return ""
	}
	si.Name, si.Reason, si.Time = TextOf(str("Name")), TextOf(str("Reason")), str("M")
	switch c := v.dict["Cert"]; c.kind {
	case kString:
		si.Certs = [][]byte{[]byte(c.s)}
	case kArray:
		for _, e := range c.arr {
			if e.kind == kString {
				si.Certs = append(si.Certs, []byte(e.s))
			}
		}
	}
	if c, ok := v.dict["Contents"]; ok && len(si.ByteRange) == 4 && c.lo != int(si.ByteRange[1]) && len(si.Problems) == 0 {
		si.Problems = append(si.Problems, fmt.Sprintf("the gap the /ByteRange leaves out (byte %d) is not this signature dictionary's /Contents (byte %d): the signed range was moved", si.ByteRange[1], c.lo))
	}
}

// TextOf decodes a PDF text string: UTF-16 with a byte order mark (big-endian as the
// standard says, little-endian as some writers do), else PDFDocEncoding read as Latin-1.
func TextOf(s string) string {
	be := len(s) >= 2 && s[0] == 0xFE && s[1] == 0xFF
	if le := len(s) >= 2 && s[0] == 0xFF && s[1] == 0xFE; be || le {
		unit := func(i int) rune {
			if le {
				return rune(s[i+1])<<8 | rune(s[i])
			}
			return rune(s[i])<<8 | rune(s[i+1])
		}
		var r []rune
		for i := 2; i+1 < len(s); i += 2 {
			u := unit(i)
			if u >= 0xD800 && u < 0xDC00 && i+3 < len(s) {
				l := unit(i + 2)
				u = (u-0xD800)<<10 + (l - 0xDC00) + 0x10000
				i += 2
			}
			r = append(r, u)
		}
		return string(r)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// objects that an approval signature lets later updates change.
var (
	annotationTypes = map[string]bool{"Text": true, "Link": true, "FreeText": true, "Line": true, "Square": true, "Circle": true,
		"Polygon": true, "PolyLine": true, "Highlight": true, "Underline": true, "Squiggly": true, "StrikeOut": true, "Stamp": true,
		"Caret": true, "Ink": true, "Popup": true, "FileAttachment": true, "Sound": true, "Widget": true, "Redact": false}
	catalogAllowed = map[string]bool{"DSS": true, "AcroForm": true, "Perms": true, "Extensions": true, "Metadata": true}
)

// changes lists what revision j defines, judged against revision k (the signed one).
func (rs *resolver) changes(j, k int) []Change {
	nums := make([]int, 0, len(rs.revs[j].Defined))
	for n := range rs.revs[j].Defined {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	if rs.revs[j].Problem != "" {
		return []Change{{Revision: j + 1, Kind: "unreadable", Detail: "the update's cross-reference cannot be read: " + rs.revs[j].Problem}}
	}
	info := refOf(rs.revs[j].Trailer, "Info")
	var out []Change
	for _, n := range nums {
		e := rs.revs[j].Defined[n]
		old, _, existed := rs.lookup(n, k)
		existed = existed && old.typ != 0
		c := Change{Revision: j + 1, Object: n}
		if e.typ == 0 {
			if existed {
				c.Kind, c.Detail = "deleted", fmt.Sprintf("object %d, present when signed, was deleted", n)
				out = append(out, c)
			}
			continue
		}
		v, err := rs.object(n, j)
		if err != nil {
			c.Kind, c.Detail = "unreadable", err.Error()
			out = append(out, c)
			continue
		}
		if t := v.name("Type"); t == "XRef" || t == "ObjStm" {
			continue // the update's own structure
		}
		if !existed {
			// A new object changes nothing shown unless a changed object refers to it,
			// and changed objects are judged one by one.
			c.Kind, c.Allowed = kindOf(v, n, info), true
			c.Detail = fmt.Sprintf("object %d added (%s)", n, c.Kind)
			out = append(out, c)
			continue
		}
		was, err := rs.object(n, k)
		if err == nil && rs.same(was, v) {
			continue // written again, unchanged
		}
		c.Kind = kindOf(v, n, info)
		c.Allowed, c.Detail = rs.judge(c.Kind, was, v, n)
		out = append(out, c)
	}
	return out
}

func refOf(o object, key string) int {
	if o.kind == kDict {
		if r, ok := o.dict[key]; ok && r.kind == kRef {
			return r.ref[0]
		}
	}
	return -1
}

// kindOf names what an object is, for the report.
func kindOf(v object, n, info int) string {
	switch t := v.name("Type"); {
	case n == info:
		return "metadata"
	case t == "Catalog":
		return "catalog"
	case t == "Page":
		return "page"
	case t == "Pages":
		return "page tree"
	case t == "Sig" || t == "DocTimeStamp":
		return "signature"
	case t == "DSS" || t == "VRI":
		return "validation data"
	case t == "Metadata":
		return "metadata"
	case t == "Annot" || annotationTypes[v.name("Subtype")]:
		if v.name("Subtype") == "Widget" || v.name("FT") != "" {
			return "form field"
		}
		return "annotation"
	case v.name("FT") != "" || (v.kind == kDict && v.dict["Parent"].kind == kRef && v.dict["T"].kind == kString):
		return "form field"
	case v.kind == kDict && v.dict["Fields"].kind == kArray:
		return "form"
	case t == "XObject" || t == "Font" || t == "FontDescriptor" || t == "ExtGState":
		return strings.ToLower(t)
	case v.strm != nil:
		return "stream"
	case v.kind == kArray:
		return "array"
	}
	return "object"
}

// same reports whether two versions of an object are equal, stream data included.
func (rs *resolver) same(a, b object) bool {
	if a.String() != b.String() {
		return false
	}
	if (a.strm == nil) != (b.strm == nil) {
		return false
	}
	if a.strm == nil {
		return true
	}
	return bytes.Equal(rs.doc[a.strm[0]:a.strm[0]+a.strm[1]], rs.doc[b.strm[0]:b.strm[0]+b.strm[1]])
}

var annotsOrFields = func(n int) *regexp.Regexp {
	return regexp.MustCompile(`/(Annots|Fields)\s*` + strconv.Itoa(n) + `\s+0\s+R`)
}

// judge decides whether a change to an existing object is one approval signatures allow.
func (rs *resolver) judge(kind string, was, now object, n int) (bool, string) {
	switch kind {
	case "annotation", "form field", "form", "signature", "validation data", "metadata":
		return true, fmt.Sprintf("object %d (%s) changed", n, kind)
	case "catalog", "page":
		allowed := catalogAllowed
		if kind == "page" {
			allowed = map[string]bool{"Annots": true}
		}
		var bad []string
		for _, k := range diffKeys(was, now) {
			if !allowed[k] {
				bad = append(bad, "/"+k)
			}
		}
		if len(bad) > 0 {
			return false, fmt.Sprintf("object %d (%s): %s changed", n, kind, strings.Join(bad, ", "))
		}
		return true, fmt.Sprintf("object %d (%s): only %s changed", n, kind, strings.Join(prefixed(diffKeys(was, now)), ", "))
	case "array":
		if annotsOrFields(n).Match(rs.doc) {
			return true, fmt.Sprintf("object %d (the annotations or fields list) changed", n)
		}
	}
	return false, fmt.Sprintf("object %d (%s), present when signed, was changed: what the document shows may differ from what was signed", n, kind)
}

func prefixed(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = "/" + k
	}
	return out
}

// diffKeys lists the dictionary keys whose values differ between two versions.
func diffKeys(a, b object) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range []map[string]object{a.dict, b.dict} {
		for k := range d {
			if seen[k] {
				continue
			}
			seen[k] = true
			if a.dict[k].String() != b.dict[k].String() {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// dss reads the document security store of revision k.
func (rs *resolver) dss(k int) *DSS {
	root := refOf(rs.revs[k].Trailer, "Root")
	if root < 0 {
		return nil
	}
	cat, err := rs.object(root, k)
	if err != nil || cat.kind != kDict {
		return nil
	}
	dv, ok := cat.dict["DSS"]
	if !ok {
		return nil
	}
	if dv.kind == kRef {
		if dv, err = rs.object(dv.ref[0], k); err != nil {
			return nil
		}
	}
	if dv.kind != kDict {
		return nil
	}
	out := &DSS{}
	budget := 64 << 20 // validation data decoded for one file, all streams together
	read := func(key string) [][]byte {
		arr := dv.dict[key]
		if arr.kind == kRef {
			arr, _ = rs.object(arr.ref[0], k)
		}
		var items [][]byte
		for _, e := range arr.arr {
			if e.kind != kRef || len(items) >= 256 {
				continue
			}
			s, err := rs.object(e.ref[0], k)
			if err != nil || s.strm == nil {
				continue
			}
			if budget <= 0 {
				break
			}
			if data, err := rs.inf.data(rs.doc, s, int64(min(budget, 16<<20))); err == nil {
				budget -= len(data)
				items = append(items, data)
			}
		}
		return items
	}
	out.Certs, out.CRLs, out.OCSPs = read("Certs"), read("CRLs"), read("OCSPs")
	return out
}

// ParseDate reads a PDF date (ISO 32000-1 §7.9.4: D:YYYYMMDDHHmmSSOHH'mm'), as /M holds it.
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "D:")
	if len(s) < 14 {
		return time.Time{}, fmt.Errorf("PDF date %q: too short", s)
	}
	t, err := time.Parse("20060102150405", s[:14])
	if err != nil {
		return t, err
	}
	if rest := s[14:]; len(rest) >= 3 && (rest[0] == '+' || rest[0] == '-') {
		var hh, mm int
		fmt.Sscanf(strings.ReplaceAll(rest[1:], "'", " "), "%d %d", &hh, &mm)
		off := time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute
		if rest[0] == '+' {
			off = -off
		}
		t = t.Add(off)
	}
	return t.UTC(), nil
}
