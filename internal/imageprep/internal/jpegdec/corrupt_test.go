package jpegdec

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"testing"
)

// damage returns data damaged in way i: cut short, bytes changed, a
// restart marker inserted, bytes removed.
func damage(data []byte, i int, r *rand.Rand) []byte {
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
		bad = append(bad[:at:at], bad[min(at+1+r.IntN(30), len(bad)):]...)
	}
	return bad
}

// maxPixels bounds the frames decoded from damaged input, which may claim
// any size.
const maxPixels = 1 << 20

// decodeWild is decode, also reporting whether a block had a coefficient
// outside the range of the IEEE 1180 inverse DCT, [-2048, 2047]: which
// T.81's 8-bit images never have, and damaged ones may. The inverse DCTs
// of image/jpeg and this package overflow their own ways there.
func decodeWild(data []byte, shift uint) (m image.Image, wild bool, err error) {
	blockHook = func(blk *[64]int32) {
		for _, c := range blk {
			if c < -2048 || c > 2047 {
				wild = true
			}
		}
	}
	defer func() { blockHook = nil }()
	m, err = decode(data, shift, maxPixels)
	return m, wild, err
}

// TestCorruptInput decodes damaged JPEGs at every scale: the decoder must
// return, never panic or loop; at full size, where image/jpeg decodes the
// damaged file too, the pixels must be within 2 of its (unless a block
// has coefficients out of range: decodeWild). Two inverse DCTs each within
// 1 of the exact one (IEEE 1180) may be 2 apart, and damaged data makes
// blocks unlike any photo's.
func TestCorruptInput(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, f := range fixtures(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 1<<20 {
			continue
		}
		for i := range 80 {
			bad := damage(data, i, r)
			for _, shift := range []uint{1, 2, 3} {
				_, _ = decode(bad, shift, maxPixels)
			}
			got, wild, err := decodeWild(bad, 0)
			if err != nil {
				continue
			}
			want, werr := jpeg.Decode(bytes.NewReader(bad))
			if werr == nil && !wild {
				if _, _, err := compare(got, want, 2); err != nil {
					t.Errorf("%s damage %d: decoded, unlike image/jpeg: %v", f, i, err)
				}
			}
		}
	}
}

// FuzzDecode decodes any input at every scale without panicking, and
// where both it and image/jpeg decode an input at full size (with its
// coefficients in range: decodeWild), to pixels within 2 of image/jpeg's
// (as TestCorruptInput; 4 for CMYK: YCCK is converted to RGB).
func FuzzDecode(f *testing.F) {
	// Small seeds: the fuzzer minimizes what it finds interesting, slowly
	// for large inputs.
	seed, err := os.ReadFile("../../testdata/quadrants-progressive.jpg")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for i := range layouts {
		f.Add(generated(i, 19, 13, i%3, true, 5))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, shift := range []uint{1, 2, 3} {
			_, _ = decode(data, shift, maxPixels)
		}
		got, wild, err := decodeWild(data, 0)
		if err != nil || wild {
			return
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > maxPixels {
			return
		}
		want, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		tol := 2
		if _, ok := got.(*image.CMYK); ok {
			tol = 4
		}
		if _, _, err := compare(got, want, tol); err != nil {
			t.Errorf("decoded unlike image/jpeg: %v", err)
		}
	})
}

// TestEndOfData: a sequential JPEG whose scans are whole decodes without
// its EOI marker; a progressive one cut after a scan, which may lack its
// last scans, is an error, as is any cut inside a scan.
func TestEndOfData(t *testing.T) {
	for _, tc := range []struct {
		file   string
		cut    func([]byte) []byte
		decode bool
	}{
		{"baseline420.jpg", func(b []byte) []byte { return b[:len(b)-2] }, true},
		{"baseline420.jpg", func(b []byte) []byte { return b[:len(b)-3] }, false},
		{"progressive444.jpg", func(b []byte) []byte { return b[:len(b)-2] }, false},
		{"progressive444.jpg", func(b []byte) []byte { return b[:bytes.LastIndex(b, []byte{0xff, 0xda})] }, false},
	} {
		data, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		cut := tc.cut(data)
		_, err = Decode(cut)
		if (err == nil) != tc.decode {
			t.Errorf("%s cut to %d of %d bytes: err %v", tc.file, len(cut), len(data), err)
		}
	}
}
