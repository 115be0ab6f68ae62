package certdoc

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"

	"github.com/dangan-archive/dangan/formats/font"
)

// SealPicture draws a round red seal for an issuer (a ring, a star, the name along the
// upper arc, the purpose across the bottom) as a transparent PNG of px × px pixels.
func SealPicture(name, purpose string, px int) ([]byte, error) {
	f, err := sfnt.Parse(font.Default().Bytes())
	if err != nil {
		return nil, fmt.Errorf("seal font: %w", err)
	}
	s := float32(px)
	c := s / 2
	r := vector.NewRasterizer(px, px)
	circle(r, c, c, s*0.48, false)
	circle(r, c, c, s*0.44, true) // the hole makes the ring (non-zero winding)
	star(r, c, c, s*0.15)

	var buf sfnt.Buffer
	size := s * 0.11
	runes := []rune(name)
	base := s*0.42 - size*0.88 // the radius of the name's baseline: its tops touch the ring
	step := float64(size*1.05) / float64(base)
	if max := math.Pi * 1.3 / float64(len(runes)); step > max {
		step = max // long names are set tighter
	}
	for i, ch := range runes {
		a := step * (float64(i) - float64(len(runes)-1)/2) // from the top, clockwise
		glyph(r, f, &buf, ch, size, c, c, base, a)
	}
	if purpose != "" {
		w := font.Default().Width(purpose, float64(size*0.8))
		for i, ch := range []rune(purpose) {
			x := c - float32(w)/2 + float32(font.Default().Width(string([]rune(purpose)[:i]), float64(size*0.8)))
			text(r, f, &buf, ch, size*0.8, x, c+s*0.30)
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, px, px))
	r.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{0xD0, 0x10, 0x10, 0xFF}), image.Point{})
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// polygon adds a closed path of n corners around (cx, cy), corner i at radius rad(i),
// starting at the top; reverse runs it the other way (a hole, by non-zero winding).
func polygon(r *vector.Rasterizer, cx, cy float32, n int, rad func(i int) float32, reverse bool) {
	for i := 0; i < n; i++ {
		t := -math.Pi/2 + 2*math.Pi*float64(i)/float64(n)
		if reverse {
			t = -math.Pi/2 - 2*math.Pi*float64(i)/float64(n)
		}
		x, y := cx+rad(i)*float32(math.Cos(t)), cy+rad(i)*float32(math.Sin(t))
		if i == 0 {
			r.MoveTo(x, y)
		} else {
			r.LineTo(x, y)
		}
	}
	r.ClosePath()
}

func circle(r *vector.Rasterizer, cx, cy, rad float32, reverse bool) {
	polygon(r, cx, cy, 96, func(int) float32 { return rad }, reverse)
}

// star is a five-pointed star, points at rad and the inner corners at 0.38 of it.
func star(r *vector.Rasterizer, cx, cy, rad float32) {
	polygon(r, cx, cy, 10, func(i int) float32 {
		if i%2 == 1 {
			return rad * 0.38
		}
		return rad
	}, false)
}

// glyph draws ch with its baseline's middle on the circle of radius rad around (cx, cy) at
// angle a (0 at the top, clockwise), its top pointing outwards.
func glyph(r *vector.Rasterizer, f *sfnt.Font, buf *sfnt.Buffer, ch rune, size, cx, cy, rad float32, a float64) {
	sin, cos := float32(math.Sin(a)), float32(math.Cos(a))
	px, py := cx+rad*sin, cy-rad*cos // the point on the circle
	half := advance(f, buf, ch, size) / 2
	segments(r, f, buf, ch, size, func(p fixed.Point26_6) (float32, float32) {
		// x runs along the tangent (cos, sin); y (down in glyph space) towards the centre.
		x, y := float32(p.X)/64-half, float32(p.Y)/64
		return px + x*cos - y*sin, py + x*sin + y*cos
	})
}

func text(r *vector.Rasterizer, f *sfnt.Font, buf *sfnt.Buffer, ch rune, size, x, y float32) {
	segments(r, f, buf, ch, size, func(p fixed.Point26_6) (float32, float32) {
		return x + float32(p.X)/64, y + float32(p.Y)/64
	})
}

func advance(f *sfnt.Font, buf *sfnt.Buffer, ch rune, size float32) float32 {
	g, err := f.GlyphIndex(buf, ch)
	if err != nil || g == 0 {
		return size
	}
	a, err := f.GlyphAdvance(buf, g, fixed.Int26_6(size*64), 0)
	if err != nil {
		return size
	}
	return float32(a) / 64
}

func segments(r *vector.Rasterizer, f *sfnt.Font, buf *sfnt.Buffer, ch rune, size float32, tr func(fixed.Point26_6) (float32, float32)) {
	g, err := f.GlyphIndex(buf, ch)
	if err != nil || g == 0 {
		return
	}
	segs, err := f.LoadGlyph(buf, g, fixed.Int26_6(size*64), nil)
	if err != nil {
		return
	}
	for _, s := range segs {
		switch s.Op {
		case sfnt.SegmentOpMoveTo:
			r.MoveTo(tr(s.Args[0]))
		case sfnt.SegmentOpLineTo:
			r.LineTo(tr(s.Args[0]))
		case sfnt.SegmentOpQuadTo:
			x1, y1 := tr(s.Args[0])
			x2, y2 := tr(s.Args[1])
			r.QuadTo(x1, y1, x2, y2)
		case sfnt.SegmentOpCubeTo:
			x1, y1 := tr(s.Args[0])
			x2, y2 := tr(s.Args[1])
			x3, y3 := tr(s.Args[2])
			r.CubeTo(x1, y1, x2, y2, x3, y3)
		}
	}
	r.ClosePath()
}
