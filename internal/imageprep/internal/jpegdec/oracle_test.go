package jpegdec

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// samples returns the samples of a decoded image, per pixel, in an order
// that does not depend on strides or planes: Y, Cb, Cr for a YCbCr image,
// and the colour model's channels for the others.
func samples(m image.Image) ([]int, error) {
	r := m.Bounds()
	var s []int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			switch m := m.(type) {
			case *image.YCbCr:
				c := m.COffset(x, y)
				s = append(s, int(m.Y[m.YOffset(x, y)]), int(m.Cb[c]), int(m.Cr[c]))
			case *image.Gray:
				s = append(s, int(m.Pix[m.PixOffset(x, y)]))
			case *image.CMYK:
				p := m.Pix[m.PixOffset(x, y):]
				s = append(s, int(p[0]), int(p[1]), int(p[2]), int(p[3]))
			case *image.RGBA:
				p := m.Pix[m.PixOffset(x, y):]
				s = append(s, int(p[0]), int(p[1]), int(p[2]), int(p[3]))
			default:
				return nil, fmt.Errorf("no samples for a %T", m)
			}
		}
	}
	return s, nil
}

// kindOf names the type of m and its subsampling.
func kindOf(m image.Image) string {
	if y, ok := m.(*image.YCbCr); ok {
		return fmt.Sprintf("%T %v", m, y.SubsampleRatio)
	}
	return fmt.Sprintf("%T", m)
}

// compare returns how many samples of got differ from want's, and an error
// if the images differ in kind or bounds or any sample by more than tol.
func compare(got, want image.Image, tol int) (differ, total int, err error) {
	if kindOf(got) != kindOf(want) || got.Bounds() != want.Bounds() {
		return 0, 0, fmt.Errorf("%s %v, want %s %v", kindOf(got), got.Bounds(), kindOf(want), want.Bounds())
	}
	g, err := samples(got)
	if err != nil {
		return 0, 0, err
	}
	w, err := samples(want)
	if err != nil {
		return 0, 0, err
	}
	for i := range g {
		if d := g[i] - w[i]; d != 0 {
			differ++
			if d > tol || d < -tol {
				return differ, len(g), fmt.Errorf("sample %d: %d, want %d", i, g[i], w[i])
			}
		}
	}
	return differ, len(g), nil
}

// idctShare bounds the share of samples whose rounding differs from
// image/jpeg's (see TestIDCTAccuracy).
const idctShare = 0.03

// nearStdlib decodes data at full size and fails unless it gives the
// pixels image/jpeg decodes from ref (data, or a file of the same
// coefficients that image/jpeg can read), each within 1, and no more than
// idctShare of them different at all (of images large enough to say).
func nearStdlib(t *testing.T, name string, data, ref []byte) {
	t.Helper()
	want, werr := jpeg.Decode(bytes.NewReader(ref))
	got, err := Decode(data)
	if err != nil || werr != nil {
		t.Fatalf("%s: err %v, image/jpeg err %v", name, err, werr)
	}
	tol := 1
	if _, ok := got.(*image.CMYK); ok {
		tol = 3 // YCCK: converted to RGB, a difference of 1 grows up to 3
	}
	differ, total, err := compare(got, want, tol)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if total >= 1000 && float64(differ) > idctShare*float64(total) {
		t.Fatalf("%s: %d of %d samples differ by 1", name, differ, total)
	}
	t.Logf("%s: %d of %d samples differ by 1 (%.2f%%)", name, differ, total, 100*float64(differ)/float64(total))
}

// fixtures returns the JPEG files of testdata (testdata/make.sh) and of
// package imageprep's testdata.
func fixtures(t *testing.T) []string {
	files, _ := filepath.Glob("testdata/*.jpg")
	more, _ := filepath.Glob("../../testdata/*.jpg")
	if len(files) < 8 || len(more) < 2 {
		t.Fatalf("fixtures: %v %v", files, more)
	}
	return append(files, more...)
}

// TestFixturesNearStdlib decodes JPEGs of every sampling, baseline and
// progressive, with and without restart intervals, optimized Huffman
// tables, and the 12 MP progressive photo of the benchmarks. The reference
// for progressive420-rst.jpg is its twin without restarts: image/jpeg
// cannot decode a progressive JPEG with restarts whose one-component scans'
// blocks are not the MCUs'.
func TestFixturesNearStdlib(t *testing.T) {
	for _, f := range fixtures(t) {
		if testing.Short() && filepath.Base(f) == "photo12-progressive.jpg" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ref := data
		if twin, err := os.ReadFile(f[:len(f)-len("-rst.jpg")] + "-norst.ref"); err == nil {
			ref = twin
		}
		nearStdlib(t, f, data, ref)
	}
}

// TestStdlibEncodedNearStdlib decodes what image/jpeg's encoder writes
// (4:2:0 and grey) at low, middle and top quality.
func TestStdlibEncodedNearStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, q := range []int{30, 75, 100} {
		for _, gray := range []bool{false, true} {
			w, h := 97+r.IntN(64), 61+r.IntN(64)
			var m image.Image
			if gray {
				g := image.NewGray(image.Rect(0, 0, w, h))
				for i := range g.Pix {
					g.Pix[i] = uint8(i*7 + r.IntN(90))
				}
				m = g
			} else {
				c := image.NewRGBA(image.Rect(0, 0, w, h))
				for i := range c.Pix {
					c.Pix[i] = uint8(i/4*3 + r.IntN(120))
				}
				m = c
			}
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: q}); err != nil {
				t.Fatal(err)
			}
			nearStdlib(t, fmt.Sprintf("image/jpeg q%d gray %v", q, gray), buf.Bytes(), buf.Bytes())
		}
	}
}
