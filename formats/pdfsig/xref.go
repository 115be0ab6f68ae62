package pdfsig

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// Revisions and cross-reference sections. A PDF changed by incremental updates is a chain
// of revisions, each ending in "startxref N %%EOF": the bytes up to there are the document
// as it was then. Each revision's cross-reference section lists the objects it defines.

// entry is one cross-reference entry.
type entry struct {
	typ int   // 0 free, 1 at an offset, 2 inside an object stream
	off int64 // offset (type 1) or the object stream's number (type 2)
	idx int   // index in the object stream (type 2)
}

// revision is one revision of a PDF.
type revision struct {
	End     int64         // the revision's bytes are [0, End): after %%EOF and its end-of-line
	XrefAt  int64         // its startxref
	Defined map[int]entry // the objects its cross-reference section(s) define
	Trailer object        // the trailer dictionary (or the xref stream's dictionary)
	Problem string        // why its cross-reference could not be read, if it could not
}

// maxObjects bounds the entries read from one cross-reference section, maxRevisions the
// revisions read, maxSignatures the signatures inspected: each signature is judged against
// every later revision, so their product bounds the work.
const (
	maxObjects    = 1 << 20
	maxRevisions  = 4096
	maxSignatures = 256
)

var startxrefEOF = regexp.MustCompile(`startxref\s+(\d+)\s*%%EOF`)

// revisions finds every revision of doc. A linearized file's first-page section
// ("startxref 0") belongs to the revision after it and is not counted.
func revisions(doc []byte, inf *inflater) []revision {
	var out []revision
	for _, m := range startxrefEOF.FindAllSubmatchIndex(doc, maxRevisions) {
		at, err := strconv.ParseInt(string(doc[m[2]:m[3]]), 10, 64)
		if err != nil || at == 0 {
			continue
		}
		end := int64(m[1])
		if end < int64(len(doc)) && doc[end] == '\r' {
			end++
		}
		if end < int64(len(doc)) && doc[end] == '\n' {
			end++
		}
		r := revision{End: end, XrefAt: at, Defined: map[int]entry{}}
		if err := readXref(doc, at, &r, 0, inf); err != nil {
			r.Problem = err.Error()
		}
		out = append(out, r)
	}
	return out
}

// readXref reads the cross-reference section at off (a table or a stream) into r.
func readXref(doc []byte, off int64, r *revision, depth int, inf *inflater) error {
	if off <= 0 || off >= int64(len(doc)) {
		return fmt.Errorf("startxref %d is outside the file", off)
	}
	// Writers in the field point a byte or two early; readers skip the white space.
	pos := int(off)
	for pos < len(doc) && isWhite(doc[pos]) {
		pos++
	}
	if bytes.HasPrefix(doc[pos:], []byte("xref")) {
		return readXrefTable(doc, pos+4, r, depth, inf)
	}
	_, v, err := indirect(doc, pos)
	if err != nil {
		return fmt.Errorf("no cross-reference section at %d: %w", off, err)
	}
	if v.name("Type") != "XRef" || v.strm == nil {
		return fmt.Errorf("the object at %d is not a cross-reference stream", off)
	}
	r.Trailer = v
	return readXrefStream(doc, v, r, inf)
}

func readXrefTable(doc []byte, pos int, r *revision, depth int, inf *inflater) error {
	p := &parser{buf: doc, pos: pos}
	for n := 0; ; {
		p.skipWhite()
		if bytes.HasPrefix(doc[p.pos:], []byte("trailer")) {
			p.pos += len("trailer")
			t, err := p.value(0)
			if err != nil || t.kind != kDict {
				return fmt.Errorf("the trailer does not parse: %v", err)
			}
			r.Trailer = t
			// A hybrid file's table is completed by a cross-reference stream.
			if x, ok := t.dict["XRefStm"]; ok && x.kind == kNumber && depth == 0 {
				if at, err := strconv.ParseInt(x.s, 10, 64); err == nil {
					if _, v, err := indirect(doc, int(at)); err == nil && v.strm != nil {
						extra := revision{Defined: map[int]entry{}}
						if readXrefStream(doc, v, &extra, inf) == nil {
							for k, e := range extra.Defined {
								if _, ok := r.Defined[k]; !ok {
									r.Defined[k] = e
								}
							}
						}
					}
				}
			}
			return nil
		}
		first, count := p.regular(), ""
		p.skipWhite()
		count = p.regular()
		a, err1 := strconv.Atoi(first)
		c, err2 := strconv.Atoi(count)
		if err1 != nil || err2 != nil || a < 0 || c < 0 || n+c > maxObjects {
			return fmt.Errorf("a cross-reference subsection header does not parse at %d", p.pos)
		}
		n += c
		for i := 0; i < c; i++ {
			o, g, t := p.three()
			off, err := strconv.ParseInt(o, 10, 64)
			if err != nil || !isInt(g) || (t != "n" && t != "f") {
				return fmt.Errorf("a cross-reference entry does not parse at %d", p.pos)
			}
			if t == "n" {
				r.Defined[a+i] = entry{typ: 1, off: off}
			} else if a+i != 0 {
				r.Defined[a+i] = entry{typ: 0}
			}
		}
	}
}

func intOf(o object) (int64, bool) {
	if o.kind != kNumber {
		return 0, false
	}
	v, err := strconv.ParseInt(o.s, 10, 64)
	return v, err == nil
}

func readXrefStream(doc []byte, v object, r *revision, inf *inflater) error {
	data, err := inf.data(doc, v, 64<<20)
	if err != nil {
		return fmt.Errorf("cross-reference stream: %w", err)
	}
	w := v.dict["W"]
	if w.kind != kArray || len(w.arr) != 3 {
		return fmt.Errorf("cross-reference stream: /W is not three numbers")
	}
	var ws [3]int
	for i, e := range w.arr {
		x, ok := intOf(e)
		if !ok || x < 0 || x > 8 {
			return fmt.Errorf("cross-reference stream: /W is not three small numbers")
		}
		ws[i] = int(x)
	}
	size, _ := intOf(v.dict["Size"])
	index := []int64{0, size}
	if ix, ok := v.dict["Index"]; ok && ix.kind == kArray {
		index = index[:0]
		for _, e := range ix.arr {
			x, _ := intOf(e)
			index = append(index, x)
		}
	}
	row := ws[0] + ws[1] + ws[2]
	if row == 0 {
		return fmt.Errorf("cross-reference stream: empty rows")
	}
	field := func(b []byte) int64 {
		var x int64
		for _, c := range b {
			x = x<<8 | int64(c)
		}
		return x
	}
	at := 0
	for i := 0; i+1 < len(index); i += 2 {
		if index[i+1] < 0 || index[i+1] > maxObjects {
			return fmt.Errorf("cross-reference stream: /Index out of range")
		}
		for j := int64(0); j < index[i+1]; j++ {
			if at+row > len(data) {
				return fmt.Errorf("cross-reference stream: shorter than its /Index")
			}
			typ := int64(1)
			if ws[0] > 0 {
				typ = field(data[at : at+ws[0]])
			}
			f2 := field(data[at+ws[0] : at+ws[0]+ws[1]])
			f3 := field(data[at+ws[0]+ws[1] : at+row])
			at += row
			num := int(index[i] + j)
			switch typ {
			case 0:
				if num != 0 {
					r.Defined[num] = entry{typ: 0}
				}
			case 1:
				r.Defined[num] = entry{typ: 1, off: f2}
			case 2:
				r.Defined[num] = entry{typ: 2, off: f2, idx: int(f3)}
			}
		}
	}
	return nil
}

// inflater bounds the bytes decoded for one file, all streams together, so a small file
// cannot make the reader inflate gigabytes.
type inflater struct{ left int64 }

// maxInflated is what one Inspect decodes at most.
const maxInflated = 256 << 20

func (f *inflater) data(doc []byte, v object, max int64) ([]byte, error) {
	if f.left <= 0 {
		return nil, fmt.Errorf("the file's streams decode to more than %d bytes", maxInflated)
	}
	data, err := streamData(doc, v, min(max, f.left))
	f.left -= int64(len(data))
	return data, err
}

// streamData returns a stream's decoded data (FlateDecode with PNG or TIFF predictors, or
// no filter), at most max bytes.
func streamData(doc []byte, v object, max int64) ([]byte, error) {
	raw := doc[v.strm[0] : v.strm[0]+v.strm[1]]
	filter := v.dict["Filter"]
	if filter.kind == kArray && len(filter.arr) == 1 {
		filter = filter.arr[0]
	}
	var data []byte
	switch {
	case filter.kind == kNull:
		data = raw
	case filter.kind == kName && filter.s == "FlateDecode":
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("flate: %w", err)
		}
		data, err = io.ReadAll(io.LimitReader(zr, max+1))
		if err != nil && len(data) == 0 {
			return nil, fmt.Errorf("flate: %w", err)
		}
		if int64(len(data)) > max {
			return nil, fmt.Errorf("decodes to more than %d bytes", max)
		}
	default:
		return nil, fmt.Errorf("filter %s is not read", filter)
	}
	parms := v.dict["DecodeParms"]
	if parms.kind == kArray && len(parms.arr) == 1 {
		parms = parms.arr[0]
	}
	if parms.kind != kDict {
		return data, nil
	}
	pred, _ := intOf(parms.dict["Predictor"])
	if pred < 10 {
		return data, nil
	}
	cols := int64(1)
	if c, ok := intOf(parms.dict["Columns"]); ok && c > 0 && c < 1<<16 {
		cols = c
	}
	return unpredictPNG(data, int(cols))
}

// unpredictPNG undoes PNG row filters (one byte per pixel, as cross-reference streams use).
func unpredictPNG(data []byte, cols int) ([]byte, error) {
	stride := cols + 1
	out := make([]byte, 0, len(data)/stride*cols)
	prev := make([]byte, cols)
	for i := 0; i+stride <= len(data); i += stride {
		ft, row := data[i], append([]byte(nil), data[i+1:i+stride]...)
		for j := range row {
			var left, up, ul byte
			if j > 0 {
				left, ul = row[j-1], prev[j-1]
			}
			up = prev[j]
			switch ft {
			case 0:
			case 1:
				row[j] += left
			case 2:
				row[j] += up
			case 3:
				row[j] += byte((int(left) + int(up)) / 2)
			case 4:
				row[j] += paeth(left, up, ul)
			default:
				return nil, fmt.Errorf("PNG predictor %d", ft)
			}
		}
		out = append(out, row...)
		prev = row
	}
	return out, nil
}

func paeth(a, b, c byte) byte {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := abs(p-int(a)), abs(p-int(b)), abs(p-int(c))
	if pa <= pb && pa <= pc {
		return a
	}
	if pb <= pc {
		return b
	}
	return c
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// resolver finds objects as a revision sees them: the latest definition at or before it.
type resolver struct {
	inf  *inflater
	doc  []byte
	revs []revision
	objs map[[2]int]map[int]object // decoded object streams, by (revision, stream number)
}

// lookup returns the entry for object num as of revision k (its definition and the
// revision that made it), ok false when no revision up to k defines it.
func (rs *resolver) lookup(num, k int) (entry, int, bool) {
	for i := k; i >= 0; i-- {
		if e, ok := rs.revs[i].Defined[num]; ok {
			return e, i, true
		}
	}
	return entry{}, 0, false
}

// object reads object num as of revision k.
func (rs *resolver) object(num, k int) (object, error) {
	e, at, ok := rs.lookup(num, k)
	if !ok || e.typ == 0 {
		return object{kind: kNull}, nil
	}
	if e.typ == 1 {
		if e.off <= 0 || e.off >= int64(len(rs.doc)) {
			return object{}, fmt.Errorf("object %d: offset %d is outside the file", num, e.off)
		}
		_, v, err := indirect(rs.doc, int(e.off))
		return v, err
	}
	// In an object stream (its number is e.off), as of the revision that defined it.
	key := [2]int{at, int(e.off)}
	if rs.objs == nil {
		rs.objs = map[[2]int]map[int]object{}
	}
	objs, ok := rs.objs[key]
	if !ok {
		objs = map[int]object{}
		rs.objs[key] = objs
		se, _, ok := rs.lookup(int(e.off), at)
		if !ok || se.typ != 1 {
			return object{}, fmt.Errorf("object stream %d is not found", e.off)
		}
		_, sv, err := indirect(rs.doc, int(se.off))
		if err != nil || sv.strm == nil {
			return object{}, fmt.Errorf("object stream %d: %v", e.off, err)
		}
		data, err := rs.inf.data(rs.doc, sv, 64<<20)
		if err != nil {
			return object{}, fmt.Errorf("object stream %d: %w", e.off, err)
		}
		n, _ := intOf(sv.dict["N"])
		first, _ := intOf(sv.dict["First"])
		hp := &parser{buf: data}
		for i := int64(0); i < n && i < maxObjects; i++ {
			hp.skipWhite()
			on, _ := strconv.Atoi(hp.regular())
			hp.skipWhite()
			oo, _ := strconv.Atoi(hp.regular())
			if int(first)+oo >= len(data) || oo < 0 {
				break
			}
			vp := &parser{buf: data, pos: int(first) + oo}
			if v, err := vp.value(0); err == nil {
				objs[on] = v
			}
		}
	}
	v, ok := objs[num]
	if !ok {
		return object{}, fmt.Errorf("object %d is not in object stream %d", num, e.off)
	}
	return v, nil
}
