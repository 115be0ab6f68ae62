package font

import (
	"encoding/binary"
	"sort"
)

// CompactSubset returns a TrueType font that holds only the glyphs of the given characters
// (with glyph 0 and the components of composite glyphs), numbered from 0, with a character
// map of exactly those characters. It is for formats that find glyphs through the font's
// character map, as OFD's TextCode does; PDF's Identity-H addresses glyphs by their number,
// for which Subset keeps the numbering. A page of a certificate embeds a few kilobytes
// instead of the full-size glyph tables of the 36,000-glyph font.
func (f *Font) CompactSubset(runes []rune) ([]byte, error) {
	sort.Slice(runes, func(i, j int) bool { return runes[i] < runes[j] })
	newID := map[uint16]uint16{0: 0}
	order := []uint16{0}
	var add func(g uint16)
	add = func(g uint16) {
		if _, ok := newID[g]; ok || int(g) >= f.glyphs {
			return
		}
		newID[g] = uint16(len(order))
		order = append(order, g)
		for _, c := range f.components(g) {
			add(c)
		}
	}
	var mapped []rune
	for i, r := range runes {
		if i > 0 && runes[i-1] == r {
			continue
		}
		if g, ok := f.cmap[r]; ok && g != 0 {
			add(g)
			mapped = append(mapped, r)
		}
	}
	n := len(order)

	// glyf and loca (long offsets), composites pointing at the new numbers.
	var glyf []byte
	loca := make([]byte, 4*(n+1))
	for i, old := range order {
		binary.BigEndian.PutUint32(loca[4*i:], uint32(len(glyf)))
		d := append([]byte(nil), f.glyph(old)...)
		renumberComponents(d, newID)
		glyf = append(glyf, d...)
		for len(glyf)%4 != 0 {
			glyf = append(glyf, 0)
		}
	}
	binary.BigEndian.PutUint32(loca[4*n:], uint32(len(glyf)))

	// hmtx with a long metric for every glyph; the left side bearing is the old one.
	oldHmtx := f.tables["hmtx"]
	long := int(binary.BigEndian.Uint16(f.tables["hhea"][34:]))
	hmtx := make([]byte, 4*n)
	for i, old := range order {
		binary.BigEndian.PutUint16(hmtx[4*i:], f.advances[old])
		var lsb []byte
		if int(old) < long {
			lsb = oldHmtx[4*int(old)+2:]
		} else if at := 4*long + 2*(int(old)-long); at+2 <= len(oldHmtx) {
			lsb = oldHmtx[at:]
		}
		if len(lsb) >= 2 {
			copy(hmtx[4*i+2:], lsb[:2])
		}
	}
	hhea := append([]byte(nil), f.tables["hhea"]...)
	binary.BigEndian.PutUint16(hhea[34:], uint16(n))
	maxp := append([]byte(nil), f.tables["maxp"]...)
	binary.BigEndian.PutUint16(maxp[4:], uint16(n))
	head := append([]byte(nil), f.tables["head"]...)
	binary.BigEndian.PutUint32(head[8:], 0)
	binary.BigEndian.PutUint16(head[50:], 1)

	tables := map[string][]byte{"glyf": glyf, "loca": loca, "hmtx": hmtx, "hhea": hhea, "maxp": maxp, "head": head,
		"cmap": compactCmap(mapped, func(r rune) uint16 { return newID[f.cmap[r]] })}
	for _, tag := range []string{"name", "OS/2", "post"} {
		if b := f.tables[tag]; b != nil {
			tables[tag] = b
		}
	}
	if post := tables["post"]; len(post) >= 32 {
		p := append([]byte(nil), post[:32]...)
		binary.BigEndian.PutUint32(p, 0x00030000) // no glyph names: the numbering changed
		tables["post"] = p
	}
	out := writeSFNT(tables)
	var sum uint32
	for i := 0; i+4 <= len(out); i += 4 {
		sum += binary.BigEndian.Uint32(out[i:])
	}
	binary.BigEndian.PutUint32(out[tableOffset(out, "head")+8:], 0xB1B0AFBA-sum)
	return out, nil
}

// renumberComponents rewrites the glyph numbers of a composite glyph's components.
func renumberComponents(d []byte, newID map[uint16]uint16) {
	if len(d) < 10 || int16(binary.BigEndian.Uint16(d)) >= 0 {
		return
	}
	for p := 10; p+4 <= len(d); {
		flags := binary.BigEndian.Uint16(d[p:])
		binary.BigEndian.PutUint16(d[p+2:], newID[binary.BigEndian.Uint16(d[p+2:])])
		p += 4
		if flags&0x0001 != 0 {
			p += 4
		} else {
			p += 2
		}
		switch {
		case flags&0x0008 != 0:
			p += 2
		case flags&0x0040 != 0:
			p += 4
		case flags&0x0080 != 0:
			p += 8
		}
		if flags&0x0020 == 0 {
			return
		}
	}
}

// compactCmap is a cmap with a format 4 subtable (Windows Unicode BMP) and a format 12
// subtable (Windows Unicode full) mapping exactly the given sorted characters.
func compactCmap(runes []rune, gid func(rune) uint16) []byte {
	be16 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	be32 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }
	// Format 4: one segment per character, then the closing 0xFFFF segment.
	var bmp []rune
	for _, r := range runes {
		if r < 0xFFFF {
			bmp = append(bmp, r)
		}
	}
	segs := len(bmp) + 1
	pow, sel := 1, 0
	for pow*2 <= segs {
		pow *= 2
		sel++
	}
	var end, start, delta, rangeOff []byte
	for _, r := range bmp {
		end, start = be16(end, int(r)), be16(start, int(r))
		delta = be16(delta, (int(gid(r))-int(r))&0xFFFF)
		rangeOff = be16(rangeOff, 0)
	}
	end, start, delta, rangeOff = be16(end, 0xFFFF), be16(start, 0xFFFF), be16(delta, 1), be16(rangeOff, 0)
	f4 := be16(nil, 4)
	f4 = be16(f4, 16+8*segs)
	f4 = be16(f4, 0)
	f4 = be16(f4, 2*segs)
	f4 = be16(f4, 2*pow)
	f4 = be16(f4, sel)
	f4 = be16(f4, 2*segs-2*pow)
	f4 = append(f4, end...)
	f4 = be16(f4, 0)
	f4 = append(append(append(f4, start...), delta...), rangeOff...)
	// Format 12: one group per character.
	f12 := be16(nil, 12)
	f12 = be16(f12, 0)
	f12 = be32(f12, 16+12*len(runes))
	f12 = be32(f12, 0)
	f12 = be32(f12, len(runes))
	for _, r := range runes {
		f12 = be32(be32(be32(f12, int(r)), int(r)), int(gid(r)))
	}
	out := be16(nil, 0)
	out = be16(out, 2)
	out = be32(be16(be16(out, 3), 1), 4+16)
	out = be32(be16(be16(out, 3), 10), 4+16+len(f4))
	return append(append(out, f4...), f12...)
}
