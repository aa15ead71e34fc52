package jpegscale

import (
	"bufio"
	"bytes"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// referenceSums reads testdata/reference.sums: for each fixture, mode
// ("444", or "420" keeping 4:2:0) and scale shift, the pixelDigest of what
// the decoder this one replaced (a fork of image/jpeg with a byte-at-a-time
// bit reader) gave. Key: "file mode shift".
func referenceSums(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/reference.sums")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 4 {
			sums[strings.Join(fields[:3], " ")] = fields[3]
		}
	}
	if err := sc.Err(); err != nil || len(sums) == 0 {
		t.Fatalf("testdata/reference.sums: %d sums, %v", len(sums), err)
	}
	return sums
}

// decoders are the two ways of decoding at a scale, by mode.
var decoders = map[string]func([]byte, uint) (image.Image, error){
	"444": func(b []byte, s uint) (image.Image, error) { return DecodeScaled(bytes.NewReader(b), s) },
	"420": func(b []byte, s uint) (image.Image, error) { return DecodeScaled420(bytes.NewReader(b), s) },
}

// sameAsReference decodes data in each mode at each scale and fails on an
// error or on pixels other than the reference's for name.
func sameAsReference(t *testing.T, sums map[string]string, name string, data []byte, modes []string, shifts ...uint) {
	t.Helper()
	for _, mode := range modes {
		for _, shift := range shifts {
			key := name + " " + mode + " " + string(rune('0'+shift))
			want, ok := sums[key]
			if !ok {
				t.Fatalf("testdata/reference.sums has no %q", key)
			}
			got, err := decoders[mode](data, shift)
			if err != nil {
				t.Fatalf("%s %s 1/%d: %v", name, mode, 1<<shift, err)
			}
			if d := pixelDigest(t, got); d != want {
				t.Fatalf("%s %s 1/%d: pixels differ from the reference decoder's", name, mode, 1<<shift)
			}
		}
	}
}

// sameAsStdlib decodes data at full scale and fails unless the pixels are
// what the standard library decodes from ref (data, or a file of the same
// coefficients that image/jpeg can read).
func sameAsStdlib(t *testing.T, name string, data, ref []byte) {
	t.Helper()
	want, werr := jpeg.Decode(bytes.NewReader(ref))
	got, err := DecodeScaled(bytes.NewReader(data), 0)
	if err != nil || werr != nil {
		t.Fatalf("%s: err %v, image/jpeg err %v", name, err, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: pixels differ from image/jpeg's", name)
	}
}

// TestSameAsReference checks the entropy decoder against the one it
// replaced, on JPEGs of every sampling, baseline and progressive, with and
// without restart intervals (testdata/make.sh; the reference digests of
// progressive420-rst.jpg, which image/jpeg refuses, are those of its twin
// without restarts), and at full scale against image/jpeg, on the fixtures
// (the twin again for progressive420-rst.jpg) and on JPEGs of the standard
// library's encoder.
func TestSameAsReference(t *testing.T) {
	sums := referenceSums(t)
	files, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(files) < 8 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sameAsReference(t, sums, filepath.Base(f), data, []string{"444", "420"}, 0, 1, 2, 3)
		twin, err := os.ReadFile(strings.Replace(f, "-rst.jpg", "-norst.ref", 1))
		if err != nil {
			twin = data
		}
		sameAsStdlib(t, filepath.Base(f), data, twin)
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
			sameAsStdlib(t, "stdlib", buf.Bytes(), buf.Bytes())
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
	sameAsReference(t, referenceSums(t), "photo12-progressive.jpg", data, []string{"444"}, 1, 3)
}

// TestCorruptInput decodes damaged JPEGs: cut short, bytes changed, markers
// inserted. The decoder must return at every scale, never panic or loop;
// at full scale, where image/jpeg decodes the damaged file, this one must
// give the same pixels or an error.
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
			got, err := DecodeScaled(bytes.NewReader(bad), 0)
			want, werr := jpeg.Decode(bytes.NewReader(bad))
			if err == nil && werr == nil && !reflect.DeepEqual(got, want) {
				t.Errorf("%s damage %d: decoded, differently from image/jpeg", f, i)
			}
			for _, shift := range []uint{1, 3} {
				_, _ = DecodeScaled(bytes.NewReader(bad), shift) // returns: no panic, no endless loop
			}
		}
	}
}
