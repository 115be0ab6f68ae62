package font

import (
	"reflect"
	"testing"

	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// The compact subset, read by another TrueType implementation (x/image's sfnt): every
// character maps to a glyph with the same outline and advance as in the full font, and the
// file is a small fraction of the keep-the-numbering subset.
func TestCompactSubsetKeepsEveryCharactersGlyph(t *testing.T) {
	f := Default()
	text := []rune("食品经营许可证 张喆小吃店 1.2.156.3005.2 ÀÉé (JY14301020012345) 某县市场监督管理局")
	out, err := f.CompactSubset(append([]rune(nil), text...))
	if err != nil {
		t.Fatal(err)
	}
	small, err := sfnt.Parse(out)
	if err != nil {
		t.Fatalf("x/image cannot parse the compact subset: %v", err)
	}
	full, err := sfnt.Parse(f.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var bs, bf sfnt.Buffer
	ppem := fixed.I(int(f.UnitsPerEm))
	for _, r := range text {
		gs, err1 := small.GlyphIndex(&bs, r)
		gf, err2 := full.GlyphIndex(&bf, r)
		if err1 != nil || err2 != nil || gs == 0 || gf == 0 {
			t.Fatalf("%q: glyph %d in the subset, %d in the font (%v %v)", r, gs, gf, err1, err2)
		}
		ss, err1 := small.LoadGlyph(&bs, gs, ppem, nil)
		sf, err2 := full.LoadGlyph(&bf, gf, ppem, nil)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(ss, sf) {
			t.Errorf("%q: outline differs (%v %v)", r, err1, err2)
		}
		as, _ := small.GlyphAdvance(&bs, gs, ppem, 0)
		af, _ := full.GlyphAdvance(&bf, gf, ppem, 0)
		if as != af {
			t.Errorf("%q: advance %v, font %v", r, as, af)
		}
	}
	if g, _ := small.GlyphIndex(&bs, '龘'); g != 0 {
		t.Error("a character not in the text is in the compact subset")
	}
	gids := map[uint16]bool{}
	for _, r := range text {
		g, _ := f.GlyphIndex(r)
		gids[g] = true
	}
	keep, _ := f.Subset(gids)
	if len(out)*10 > len(keep) {
		t.Errorf("compact subset %d bytes, numbered subset %d: not much smaller", len(out), len(keep))
	}
	t.Logf("compact %d bytes, numbered %d bytes", len(out), len(keep))
}
