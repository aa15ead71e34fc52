package jpegscale

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/regscribe/regscribe/internal/imageprep/internal/jpegscale/internal/jpegref"
)

// sameAsReference decodes data at every scale, with and without keeping
// 4:2:0, by this package and by the frozen reference decoder, and fails on
// any difference of pixels or of success.
func sameAsReference(t *testing.T, name string, data []byte, shifts ...uint) {
	t.Helper()
	sameAsReferenceOf(t, name, data, data, shifts...)
}

// sameAsReferenceOf is sameAsReference with the reference decoding ref, a
// file of the same coefficients.
func sameAsReferenceOf(t *testing.T, name string, data, ref []byte, shifts ...uint) {
	t.Helper()
	type decodeFunc func([]byte, uint) (image.Image, error)
	pairs := []struct {
		mode      string
		got, want decodeFunc
	}{
		{"444", func(b []byte, s uint) (image.Image, error) { return DecodeScaled(bytes.NewReader(b), s) },
			func(b []byte, s uint) (image.Image, error) { return jpegref.DecodeScaled(bytes.NewReader(b), s) }},
		{"420", func(b []byte, s uint) (image.Image, error) { return DecodeScaled420(bytes.NewReader(b), s) },
			func(b []byte, s uint) (image.Image, error) { return jpegref.DecodeScaled420(bytes.NewReader(b), s) }},
	}
	for _, p := range pairs {
		for _, shift := range shifts {
			want, werr := p.want(ref, shift)
			got, gerr := p.got(data, shift)
			if werr != nil || gerr != nil {
				t.Fatalf("%s %s 1/%d: err %v, reference err %v", name, p.mode, 1<<shift, gerr, werr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %s 1/%d: pixels differ from the reference decoder's", name, p.mode, 1<<shift)
			}
		}
	}
}

// TestSameAsReference checks the entropy decoder against the one it
// replaced, on JPEGs of every sampling, baseline and progressive, with and
// without restart intervals (testdata/make.sh), and on JPEGs of the
// standard library's encoder.
func TestSameAsReference(t *testing.T) {
	files, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(files) < 8 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ref := data
		twin := strings.Replace(f, "-rst.jpg", "-norst.ref", 1)
		if b, err := os.ReadFile(twin); err == nil {
			ref = b
		}
		sameAsReferenceOf(t, filepath.Base(f), data, ref, 0, 1, 2, 3)
	}
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
			sameAsReference(t, "stdlib", buf.Bytes(), 0, 1, 2, 3)
		}
	}
}

// TestSameAsReference12MP is the 12 MP progressive photo of the benchmarks.
func TestSameAsReference12MP(t *testing.T) {
	if testing.Short() {
		t.Skip("12 MP decodes")
	}
	data, err := os.ReadFile("../../testdata/photo12-progressive.jpg")
	if err != nil {
		t.Fatal(err)
	}
	sameAsReference(t, "photo12-progressive", data, 1, 3)
}

// TestCorruptInput decodes damaged JPEGs: cut short, bytes changed, markers
// inserted. The decoder must return, never panic or loop; where the
// reference decodes the damaged file, this one must give the same pixels or
// an error.
func TestCorruptInput(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.jpg")
	r := rand.New(rand.NewPCG(3, 4))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 60 {
			bad := bytes.Clone(data)
			switch i % 4 {
			case 0:
				bad = bad[:len(bad)/2+r.IntN(len(bad)/2)]
			case 1:
				for range 1 + r.IntN(4) {
					bad[len(bad)/8+r.IntN(len(bad)*7/8)] = uint8(r.IntN(256))
				}
			case 2:
				at := len(bad)/4 + r.IntN(len(bad)*3/4)
				bad = append(bad[:at:at], append([]byte{0xff, uint8(0xd0 + r.IntN(10))}, bad[at:]...)...)
			case 3:
				at := len(bad)/4 + r.IntN(len(bad)*3/4)
				bad = append(bad[:at:at], bad[at+1+r.IntN(30):]...)
			}
			for _, shift := range []uint{0, 1, 3} {
				got, err := DecodeScaled(bytes.NewReader(bad), shift)
				want, werr := jpegref.DecodeScaled(bytes.NewReader(bad), shift)
				if err == nil && werr == nil && !reflect.DeepEqual(got, want) {
					t.Errorf("%s damage %d 1/%d: decoded, differently from the reference", f, i, 1<<shift)
				}
			}
		}
	}
}
