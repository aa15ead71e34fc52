package jpegdec

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// replacedPSNR is the PSNR (scaledPSNR) at 1/2, 1/4 and 1/8 of the reduced
// decode of package jpegscale, the copy of image/jpeg with a reduced IDCT
// that this package replaced (it kept 4:2:0 chroma at the luma's scale as
// this package does with every sampling), measured on 2026-12-07.
var replacedPSNR = map[string][3]float64{
	"baseline420.jpg":         {29.75, 35.98, 40.22},
	"baseline422-opt.jpg":     {29.78, 36.04, 40.84},
	"baseline440.jpg":         {29.70, 35.80, 40.45},
	"baseline444-rst.jpg":     {28.66, 35.34, 40.33},
	"gray-rst.jpg":            {24.53, 30.80, 38.10},
	"progressive-gray.jpg":    {24.51, 30.80, 38.01},
	"progressive420-rst.jpg":  {29.75, 35.98, 40.22},
	"progressive444.jpg":      {28.75, 35.39, 40.34},
	"photo12-progressive.jpg": {53.84, 53.89, 58.89},
}

// TestScaledPSNR decodes the fixtures at 1/2, 1/4 and 1/8: each must be
// at least as close to image/jpeg's full decode reduced by box means as
// the decoder this one replaced (at 1/8 both take the DC alone).
func TestScaledPSNR(t *testing.T) {
	for _, f := range fixtures(t) {
		name := filepath.Base(f)
		floor, ok := replacedPSNR[name]
		if !ok || testing.Short() && name == "photo12-progressive.jpg" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		full, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if ref, err := os.ReadFile(f[:len(f)-len("-rst.jpg")] + "-norst.ref"); err == nil {
			data = ref
		}
		std, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for i, shift := range []uint{1, 2, 3} {
			m, err := DecodeScaled(data, shift)
			if err != nil {
				t.Fatalf("%s 1/%d: %v", name, 1<<shift, err)
			}
			p, pStd := scaledPSNR(full, m, 1<<shift), scaledPSNR(std, m, 1<<shift)
			t.Logf("%s 1/%d: PSNR %.2f dB (against image/jpeg's %.2f, jpegscale's %.2f)", name, 1<<shift, p, pStd, floor[i])
			if pStd < floor[i]-0.01 { // the floor is rounded to 0.01

				t.Errorf("%s 1/%d: PSNR %.2f dB, below the %.2f of the decoder replaced", name, 1<<shift, pStd, floor[i])
			}
		}
	}
}

// TestReducedKernels checks the 4- and 2-point inverse DCTs against the
// kernels' plain matrix form, on random blocks.
func TestReducedKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var blk [64]int32
		for j := range blk {
			if r.IntN(3) == 0 || j == 0 {
				blk[j] = int32(r.IntN(8192) - 4096)
			}
		}
		if i%5 == 0 {
			clear(blk[1:])
		}
		for _, n := range []int{2, 4} {
			var got, want [16]byte
			b := blk
			if n == 4 {
				idct4(&b, got[:], 4)
			} else {
				idct2(&b, got[:], 2)
			}
			b = blk
			idctReduced(&b, n, want[:], n)
			if got != want {
				t.Fatalf("n %d: %v, want %v", n, got[:n*n], want[:n*n])
			}
		}
	}
}

// photo12 is a 4000×3000 baseline 4:2:0 JPEG of noise on a gradient.
func photo12(b *testing.B) []byte {
	m := image.NewRGBA(image.Rect(0, 0, 4000, 3000))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range m.Pix {
		m.Pix[i] = uint8(i/4%4000/16 + r.IntN(20))
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchmarkDecode(b *testing.B, data []byte, shift uint) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeScaled(data, shift); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode12MPHalf(b *testing.B) { benchmarkDecode(b, photo12(b), 1) }

func BenchmarkDecode12MPProgressiveHalf(b *testing.B) {
	data, err := os.ReadFile("../../testdata/photo12-progressive.jpg")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkDecode(b, data, 1)
}

// TestProgressiveAsBaseline decodes progressive JPEGs and their baseline
// twins (the same coefficients, rewritten by jpegtran) at every scale:
// the pixels must be the same.
func TestProgressiveAsBaseline(t *testing.T) {
	for prog, base := range map[string]string{
		"progressive420-rst.jpg": "progressive420-norst.ref",
		"progressive444.jpg":     "progressive444-baseline.ref",
		"progressive-gray.jpg":   "progressive-gray-baseline.ref",
	} {
		p, err := os.ReadFile("testdata/" + prog)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile("testdata/" + base)
		if err != nil {
			t.Fatal(err)
		}
		for shift := range uint(4) {
			got, err := DecodeScaled(p, shift)
			if err != nil {
				t.Fatal(err)
			}
			want, err := DecodeScaled(b, shift)
			if err != nil {
				t.Fatal(err)
			}
			if differ, _, err := compare(got, want, 0); err != nil || differ > 0 {
				t.Errorf("%s 1/%d: %d samples differ from %s's: %v", prog, 1<<shift, differ, base, err)
			}
		}
	}
}

// idctReduced is the plain matrix form of idct4 and idct2: the n×n
// samples (n = 2 or 4) of blk's lowest n×n frequencies, to dst.
func idctReduced(blk *[64]int32, n int, dst []byte, stride int) {
	k := reduced[n]
	var tmp [16]int64 // [v*n+x]: rows transformed
	for v := range n {
		row := blk[v*8 : v*8+n]
		for x := range n {
			kx := k[x*n : x*n+n]
			var s int64
			for u, f := range row {
				s += kx[u] * int64(f)
			}
			tmp[v*n+x] = s
		}
	}
	const half = 1 << (2*reducedBits - 1)
	for y := range n {
		ky := k[y*n : y*n+n]
		for x := range n {
			var s int64
			for v := range n {
				s += ky[v] * tmp[v*n+x]
			}
			dst[y*stride+x] = byte(min(max((s+half)>>(2*reducedBits)+128, 0), 255))
		}
	}
}
