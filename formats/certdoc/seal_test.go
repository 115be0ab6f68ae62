package certdoc

import (
	"bytes"
	"image/png"
	"os"
	"testing"
)

func TestSealPicture(t *testing.T) {
	b, err := SealPicture("某县市场监督管理局", "电子证照专用章", 400)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != 400 {
		t.Fatalf("not a 400 px PNG: %v", err)
	}
	// Red ink at the ring, none in the corners.
	if _, _, _, a := img.At(200, 14).RGBA(); a == 0 {
		t.Error("no ring at the top")
	}
	if _, _, _, a := img.At(2, 2).RGBA(); a != 0 {
		t.Error("ink in the corner")
	}
	if os.Getenv("DANGAN_SEAL_PNG") != "" {
		os.WriteFile(os.Getenv("DANGAN_SEAL_PNG"), b, 0o644)
	}
}
