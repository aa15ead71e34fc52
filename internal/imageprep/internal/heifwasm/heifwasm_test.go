package heifwasm

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"testing"
)

// TestDecodeStrides decodes gradients of widths around libheif's row
// alignment (made by testdata/gradient.py and heif-enc -q 80) and checks
// every pixel is near the gradient: a plane read with the wrong stride is
// sheared and far off.
func TestDecodeStrides(t *testing.T) {
	for _, size := range [][2]int{{32, 16}, {130, 66}, {500, 300}} {
		w, h := size[0], size[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			data, err := os.ReadFile(fmt.Sprintf("testdata/gradient-%dx%d.heic", w, h))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if m.Bounds() != image.Rect(0, 0, w, h) {
				t.Fatalf("bounds %v", m.Bounds())
			}
			var worst int
			for y := range h {
				for x := range w {
					got := color.RGBAModel.Convert(m.At(x, y)).(color.RGBA)
					want := [3]int{x * 255 / w, y * 255 / h, 128}
					for i, v := range []uint8{got.R, got.G, got.B} {
						worst = max(worst, max(int(v)-want[i], want[i]-int(v)))
					}
				}
			}
			if worst > 64 {
				t.Fatalf("a pixel is %d off the gradient", worst)
			}
		})
	}
}

// TestDecodeGarbage checks bytes that are no HEIF are an error, not a trap
// or a panic.
func TestDecodeGarbage(t *testing.T) {
	for _, in := range [][]byte{{0}, []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")} {
		if _, err := Decode(in); err == nil {
			t.Fatalf("no error for %q", in)
		}
	}
}
