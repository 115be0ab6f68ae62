// Package font reads TrueType fonts far enough to lay out and embed text: the character
// map, advance widths, metrics, and a subset holding only the glyphs a document uses.
//
// dangan embeds one font, DanganSans (DejaVu Sans Latin and Droid Sans Fallback CJK, see
// NOTICE), so certificates render the same on every machine and their Chinese text stays
// searchable.
//
//	f := font.Default()
//	w := f.Width("营业执照", 24)                 // points at 24 pt
//	gids, missing := f.Glyphs("营业执照")
//	ttf, err := f.Subset(gids)                  // embed this, CID = glyph id
package font

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
)

//go:embed DanganSans.ttf
var cjkTTF []byte

var (
	defaultOnce sync.Once
	defaultFont *Font
)

// Default is the embedded CJK font.
func Default() *Font {
	defaultOnce.Do(func() {
		f, err := Parse(cjkTTF)
		if err != nil {
			panic(fmt.Sprintf("font: the embedded font does not parse: %v", err))
		}
		defaultFont = f
	})
	return defaultFont
}

// ErrFormat is returned (wrapped) for a file that is not a TrueType font dangan can use.
var ErrFormat = errors.New("not a usable TrueType font")

// Font is a parsed TrueType (glyf) font.
type Font struct {
	Name       string // PostScript name
	UnitsPerEm int
	Ascent     int // hhea ascender, font units
	Descent    int // hhea descender, negative
	CapHeight  int
	BBox       [4]int

	data     []byte
	tables   map[string][]byte
	order    []string
	glyphs   int
	longLoca bool
	advances []uint16
	cmap     map[rune]uint16
}

// Parse reads a TrueType font.
func Parse(data []byte) (*Font, error) {
	if len(data) < 12 {
		return nil, fmt.Errorf("%w: too short", ErrFormat)
	}
	if v := binary.BigEndian.Uint32(data); v != 0x00010000 && v != 0x74727565 {
		return nil, fmt.Errorf("%w: sfnt version %#x (only TrueType outlines)", ErrFormat, v)
	}
	n := int(binary.BigEndian.Uint16(data[4:]))
	f := &Font{data: data, tables: map[string][]byte{}}
	for i := range n {
		rec := data[12+16*i:]
		if len(rec) < 16 {
			return nil, fmt.Errorf("%w: truncated table directory", ErrFormat)
		}
		tag := string(rec[:4])
		off, ln := binary.BigEndian.Uint32(rec[8:]), binary.BigEndian.Uint32(rec[12:])
		if uint64(off)+uint64(ln) > uint64(len(data)) {
			return nil, fmt.Errorf("%w: table %s out of bounds", ErrFormat, tag)
		}
		f.tables[tag] = data[off : off+ln]
		f.order = append(f.order, tag)
	}
	for _, t := range []string{"head", "hhea", "maxp", "hmtx", "loca", "glyf", "cmap"} {
		if f.tables[t] == nil {
			return nil, fmt.Errorf("%w: no %s table", ErrFormat, t)
		}
	}
	head, hhea, maxp := f.tables["head"], f.tables["hhea"], f.tables["maxp"]
	if len(head) < 54 || len(hhea) < 36 || len(maxp) < 6 {
		return nil, fmt.Errorf("%w: short head, hhea or maxp", ErrFormat)
	}
	f.UnitsPerEm = int(binary.BigEndian.Uint16(head[18:]))
	for i := range 4 {
		f.BBox[i] = int(int16(binary.BigEndian.Uint16(head[36+2*i:])))
	}
	f.longLoca = binary.BigEndian.Uint16(head[50:]) == 1
	f.Ascent = int(int16(binary.BigEndian.Uint16(hhea[4:])))
	f.Descent = int(int16(binary.BigEndian.Uint16(hhea[6:])))
	f.CapHeight = f.Ascent
	if os2 := f.tables["OS/2"]; len(os2) >= 90 && binary.BigEndian.Uint16(os2) >= 2 {
		f.CapHeight = int(int16(binary.BigEndian.Uint16(os2[88:])))
	}
	f.glyphs = int(binary.BigEndian.Uint16(maxp[4:]))
	if f.UnitsPerEm == 0 || f.glyphs == 0 {
		return nil, fmt.Errorf("%w: no units per em or no glyphs", ErrFormat)
	}
	if err := f.readMetrics(); err != nil {
		return nil, err
	}
	if err := f.readCmap(); err != nil {
		return nil, err
	}
	f.Name = f.postScriptName()
	return f, nil
}

func (f *Font) readMetrics() error {
	hmtx := f.tables["hmtx"]
	long := int(binary.BigEndian.Uint16(f.tables["hhea"][34:]))
	if long == 0 || len(hmtx) < 4*long {
		return fmt.Errorf("%w: hmtx shorter than hhea says", ErrFormat)
	}
	f.advances = make([]uint16, f.glyphs)
	for g := range f.glyphs {
		i := min(g, long-1)
		f.advances[g] = binary.BigEndian.Uint16(hmtx[4*i:])
	}
	want := (f.glyphs + 1) * 2
	if f.longLoca {
		want *= 2
	}
	if len(f.tables["loca"]) < want {
		return fmt.Errorf("%w: loca too short", ErrFormat)
	}
	return nil
}

// readCmap reads a Unicode subtable: format 12 when present, else format 4.
func (f *Font) readCmap() error {
	cm := f.tables["cmap"]
	if len(cm) < 4 {
		return fmt.Errorf("%w: short cmap", ErrFormat)
	}
	var sub4, sub12 []byte
	for i := range int(binary.BigEndian.Uint16(cm[2:])) {
		rec := cm[4+8*i:]
		if len(rec) < 8 {
			break
		}
		pid, eid, off := binary.BigEndian.Uint16(rec), binary.BigEndian.Uint16(rec[2:]), binary.BigEndian.Uint32(rec[4:])
		if pid != 0 && !(pid == 3 && (eid == 1 || eid == 10)) || int(off)+4 > len(cm) {
			continue
		}
		switch binary.BigEndian.Uint16(cm[off:]) {
		case 4:
			sub4 = cm[off:]
		case 12:
			sub12 = cm[off:]
		}
	}
	f.cmap = map[rune]uint16{}
	switch {
	case len(sub12) >= 16:
		groups := int(binary.BigEndian.Uint32(sub12[12:]))
		for i := range groups {
			g := sub12[16+12*i:]
			if len(g) < 12 {
				return fmt.Errorf("%w: truncated cmap format 12", ErrFormat)
			}
			start, end, gid := binary.BigEndian.Uint32(g), binary.BigEndian.Uint32(g[4:]), binary.BigEndian.Uint32(g[8:])
			for c := start; c <= end && c-start < 0x10000; c++ {
				f.cmap[rune(c)] = uint16(gid + c - start)
			}
		}
	case len(sub4) >= 14:
		segs := int(binary.BigEndian.Uint16(sub4[6:])) / 2
		if len(sub4) < 16+8*segs {
			return fmt.Errorf("%w: truncated cmap format 4", ErrFormat)
		}
		ends, starts := sub4[14:], sub4[16+2*segs:]
		deltas, ranges := sub4[16+4*segs:], sub4[16+6*segs:]
		for s := range segs {
			end, start := binary.BigEndian.Uint16(ends[2*s:]), binary.BigEndian.Uint16(starts[2*s:])
			delta, ro := binary.BigEndian.Uint16(deltas[2*s:]), binary.BigEndian.Uint16(ranges[2*s:])
			for c := uint32(start); c <= uint32(end) && c != 0xFFFF; c++ {
				var gid uint16
				if ro == 0 {
					gid = uint16(c) + delta
				} else {
					at := 16 + 6*segs + 2*s + int(ro) + 2*int(c-uint32(start))
					if at+2 > len(sub4) {
						continue
					}
					if gid = binary.BigEndian.Uint16(sub4[at:]); gid != 0 {
						gid += delta
					}
				}
				if gid != 0 {
					f.cmap[rune(c)] = gid
				}
			}
		}
	default:
		return fmt.Errorf("%w: no Unicode cmap subtable", ErrFormat)
	}
	return nil
}

func (f *Font) postScriptName() string {
	name := f.tables["name"]
	if len(name) < 6 {
		return "Font"
	}
	count, strOff := int(binary.BigEndian.Uint16(name[2:])), int(binary.BigEndian.Uint16(name[4:]))
	for i := range count {
		rec := name[6+12*i:]
		if len(rec) < 12 || binary.BigEndian.Uint16(rec[6:]) != 6 {
			continue
		}
		ln, off := int(binary.BigEndian.Uint16(rec[8:])), int(binary.BigEndian.Uint16(rec[10:]))
		if strOff+off+ln > len(name) {
			continue
		}
		s := name[strOff+off : strOff+off+ln]
		if binary.BigEndian.Uint16(rec) == 3 { // UTF-16BE: PostScript names are ASCII
			var b []byte
			for j := 1; j < len(s); j += 2 {
				b = append(b, s[j])
			}
			s = b
		}
		return string(s)
	}
	return "Font"
}

// GlyphIndex is the glyph for r, and whether the font has one.
func (f *Font) GlyphIndex(r rune) (uint16, bool) {
	g, ok := f.cmap[r]
	return g, ok
}

// Advance is a glyph's advance width in font units.
func (f *Font) Advance(gid uint16) int {
	if int(gid) >= len(f.advances) {
		return 0
	}
	return int(f.advances[gid])
}

// Width is the width of s set at size points, in points. Characters the font lacks count
// as one em.
func (f *Font) Width(s string, size float64) float64 {
	units := 0
	for _, r := range s {
		if g, ok := f.cmap[r]; ok {
			units += f.Advance(g)
		} else {
			units += f.UnitsPerEm
		}
	}
	return float64(units) * size / float64(f.UnitsPerEm)
}

// Glyphs returns the glyph of every character of s, and the characters the font lacks.
func (f *Font) Glyphs(s string) (gids []uint16, missing []rune) {
	for _, r := range s {
		if g, ok := f.cmap[r]; ok {
			gids = append(gids, g)
		} else {
			missing = append(missing, r)
		}
	}
	return gids, missing
}

// Subset returns a TrueType font with the same glyph numbering in which only the glyphs
// used (and the glyphs their composites are built from, and glyph 0) keep their outlines.
// Tables are copied as they are, except glyf, loca (long) and head.
func (f *Font) Subset(used map[uint16]bool) ([]byte, error) {
	keep := map[uint16]bool{0: true}
	var queue []uint16
	for g := range used {
		queue = append(queue, g)
	}
	for len(queue) > 0 {
		g := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if keep[g] || int(g) >= f.glyphs {
			continue
		}
		keep[g] = true
		queue = append(queue, f.components(g)...)
	}
	var glyf []byte
	loca := make([]byte, 4*(f.glyphs+1))
	for g := range f.glyphs {
		binary.BigEndian.PutUint32(loca[4*g:], uint32(len(glyf)))
		if keep[uint16(g)] {
			glyf = append(glyf, f.glyph(uint16(g))...)
			for len(glyf)%4 != 0 {
				glyf = append(glyf, 0)
			}
		}
	}
	binary.BigEndian.PutUint32(loca[4*f.glyphs:], uint32(len(glyf)))
	head := append([]byte(nil), f.tables["head"]...)
	binary.BigEndian.PutUint32(head[8:], 0) // checkSumAdjustment, set below
	binary.BigEndian.PutUint16(head[50:], 1)

	tables := map[string][]byte{}
	for tag, b := range f.tables {
		switch tag {
		case "DSIG", "hdmx", "LTSH", "VDMX", "kern", "GPOS", "GSUB", "vhea", "vmtx":
			continue // not needed to show the glyphs; some would be stale
		}
		tables[tag] = b
	}
	tables["glyf"], tables["loca"], tables["head"] = glyf, loca, head
	out := writeSFNT(tables)
	var sum uint32
	for i := 0; i+4 <= len(out); i += 4 {
		sum += binary.BigEndian.Uint32(out[i:])
	}
	headAt := tableOffset(out, "head")
	binary.BigEndian.PutUint32(out[headAt+8:], 0xB1B0AFBA-sum)
	return out, nil
}

func (f *Font) glyph(g uint16) []byte {
	loca, glyf := f.tables["loca"], f.tables["glyf"]
	var a, b uint32
	if f.longLoca {
		a, b = binary.BigEndian.Uint32(loca[4*int(g):]), binary.BigEndian.Uint32(loca[4*int(g)+4:])
	} else {
		a, b = 2*uint32(binary.BigEndian.Uint16(loca[2*int(g):])), 2*uint32(binary.BigEndian.Uint16(loca[2*int(g)+2:]))
	}
	if a >= b || int(b) > len(glyf) {
		return nil
	}
	return glyf[a:b]
}

// components lists the glyphs a composite glyph is built from.
func (f *Font) components(g uint16) []uint16 {
	d := f.glyph(g)
	if len(d) < 10 || int16(binary.BigEndian.Uint16(d)) >= 0 {
		return nil
	}
	var out []uint16
	for p := 10; p+4 <= len(d); {
		flags := binary.BigEndian.Uint16(d[p:])
		out = append(out, binary.BigEndian.Uint16(d[p+2:]))
		p += 4
		if flags&0x0001 != 0 { // ARG_1_AND_2_ARE_WORDS
			p += 4
		} else {
			p += 2
		}
		switch {
		case flags&0x0008 != 0: // WE_HAVE_A_SCALE
			p += 2
		case flags&0x0040 != 0: // X_AND_Y_SCALE
			p += 4
		case flags&0x0080 != 0: // TWO_BY_TWO
			p += 8
		}
		if flags&0x0020 == 0 { // MORE_COMPONENTS
			break
		}
	}
	return out
}

func writeSFNT(tables map[string][]byte) []byte {
	tags := make([]string, 0, len(tables))
	for t := range tables {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	n := len(tags)
	entry, pow := 0, 1
	for pow*2 <= n {
		pow *= 2
		entry++
	}
	hdr := make([]byte, 12+16*n)
	binary.BigEndian.PutUint32(hdr, 0x00010000)
	binary.BigEndian.PutUint16(hdr[4:], uint16(n))
	binary.BigEndian.PutUint16(hdr[6:], uint16(pow*16))
	binary.BigEndian.PutUint16(hdr[8:], uint16(entry))
	binary.BigEndian.PutUint16(hdr[10:], uint16(n*16-pow*16))
	var data []byte
	for i, t := range tags {
		b := tables[t]
		var sum uint32
		padded := append(append([]byte(nil), b...), make([]byte, (4-len(b)%4)%4)...)
		for j := 0; j < len(padded); j += 4 {
			sum += binary.BigEndian.Uint32(padded[j:])
		}
		rec := hdr[12+16*i:]
		copy(rec, t)
		binary.BigEndian.PutUint32(rec[4:], sum)
		binary.BigEndian.PutUint32(rec[8:], uint32(len(hdr)+len(data)))
		binary.BigEndian.PutUint32(rec[12:], uint32(len(b)))
		data = append(data, padded...)
	}
	out := append(hdr, data...)
	return out
}

func tableOffset(sfnt []byte, tag string) int {
	n := int(binary.BigEndian.Uint16(sfnt[4:]))
	for i := range n {
		rec := sfnt[12+16*i:]
		if string(rec[:4]) == tag {
			return int(binary.BigEndian.Uint32(rec[8:]))
		}
	}
	return -1
}

// Bytes is the font file.
func (f *Font) Bytes() []byte { return f.data }
