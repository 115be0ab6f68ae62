package font

import (
	"testing"

	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

func TestDefaultCoversCertificateText(t *testing.T) {
	f := Default()
	// Rare characters in names (喆 堃 昇 珺) are outside GB 2312: the font must have them.
	gids, missing := f.Glyphs("中华人民共和国营业执照 张喆 王堃 李昇 赵珺 2026年11月22日 No.(123)")
	if len(missing) > 0 {
		t.Fatalf("the embedded font lacks %q", string(missing))
	}
	if len(gids) == 0 || f.UnitsPerEm == 0 || f.Name == "" {
		t.Fatalf("font not read: %+v", f)
	}
	if _, missing := f.Glyphs("\U0001F600"); len(missing) != 1 {
		t.Fatal("an emoji must be reported missing")
	}
}

// The subset must be a font another reader accepts, with the same glyph numbering, the
// same advances and the used outlines intact.
func TestSubsetReadsBackWithTheSameGlyphs(t *testing.T) {
	f := Default()
	text := "电子证照 ABC 123"
	gids, _ := f.Glyphs(text)
	used := map[uint16]bool{}
	for _, g := range gids {
		used[g] = true
	}
	sub, err := f.Subset(used)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub) > len(cjkTTF)/2 {
		t.Errorf("subset is %d bytes of %d", len(sub), len(cjkTTF))
	}
	orig, err := sfnt.Parse(cjkTTF)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sfnt.Parse(sub)
	if err != nil {
		t.Fatalf("x/image/font/sfnt refuses the subset: %v", err)
	}
	var b1, b2 sfnt.Buffer
	ppem := fixed.I(f.UnitsPerEm)
	for _, r := range text {
		g1, _ := orig.GlyphIndex(&b1, r)
		g2, err := got.GlyphIndex(&b2, r)
		if err != nil || g1 != g2 {
			t.Fatalf("glyph of %q: %d vs %d (%v)", r, g1, g2, err)
		}
		s1, err1 := orig.LoadGlyph(&b1, g1, ppem, nil)
		n1 := len(s1)
		s2, err2 := got.LoadGlyph(&b2, g2, ppem, nil)
		if err1 != nil || err2 != nil || n1 != len(s2) {
			t.Fatalf("outline of %q: %d segments vs %d (%v, %v)", r, n1, len(s2), err1, err2)
		}
	}
	// A glyph not used has no outline left.
	g, _ := got.GlyphIndex(&b2, '档')
	if segs, err := got.LoadGlyph(&b2, g, ppem, nil); err != nil || len(segs) != 0 {
		t.Fatalf("an unused glyph kept %d segments (%v)", len(segs), err)
	}
}

func TestParseRefusesGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("OTTO0000000000000"), cjkTTF[:100]} {
		if _, err := Parse(b); err == nil {
			t.Errorf("Parse(%d bytes) accepted", len(b))
		}
	}
}
