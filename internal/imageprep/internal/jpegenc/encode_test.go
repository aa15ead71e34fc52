package jpegenc

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/regscribe/regscribe/internal/imageprep/internal/zigzag"
)

// TestFDCT checks the scaled forward DCT and its quantization against T.81
// A.3.3's formula computed directly on the level-shifted samples, with
// every quantizer 1: each
// coefficient must round to within 1 of the exact one.
func TestFDCT(t *testing.T) {
	var q [64]uint8
	for i := range q {
		q[i] = 1
	}
	var s scaler
	s.init(&q)
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		var b [64]float32
		var in [64]float64
		for i := range b {
			v := r.IntN(256)
			b[i], in[i] = float32(v), float64(v-128)
		}
		var c [64]int32
		nz := s.transform(&b, &c)
		for k, z := range zigzag.Order {
			u, v := int(z%8), int(z/8)
			sum := 0.0
			for y := range 8 {
				for x := range 8 {
					sum += in[8*y+x] * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) *
						math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
				}
			}
			cu, cv := 1.0, 1.0
			if u == 0 {
				cu = 1 / math.Sqrt2
			}
			if v == 0 {
				cv = 1 / math.Sqrt2
			}
			want := cu * cv * sum / 4
			if math.Abs(float64(c[k])-want) > 1 {
				t.Fatalf("coefficient (%d, %d): %d, exact %.2f", u, v, c[k], want)
			}
			if k > 0 && (c[k] != 0) != (nz&(1<<k) != 0) {
				t.Fatalf("mask bit %d wrong for %d", k, c[k])
			}
		}
	}
}

// TestHuffmanTables checks that each AC table codes every run/size symbol
// of T.81 F.1.2.2 once and each DC table every size 0 to 11, with as many
// values as its counts say.
func TestHuffmanTables(t *testing.T) {
	for name, s := range map[string]*huffSpec{"luma DC": &lumaDC, "chroma DC": &chromaDC, "luma AC": &lumaAC, "chroma AC": &chromaAC} {
		n := 0
		for _, c := range s.counts {
			n += int(c)
		}
		if n != len(s.vals) {
			t.Errorf("%s: counts say %d values, %d given", name, n, len(s.vals))
		}
		seen := map[uint8]bool{}
		for _, v := range s.vals {
			if seen[v] {
				t.Errorf("%s: value %#02x twice", name, v)
			}
			seen[v] = true
		}
		if name[len(name)-2:] == "DC" {
			for v := range uint8(12) {
				if !seen[v] {
					t.Errorf("%s: no code for size %d", name, v)
				}
			}
			continue
		}
		for rs := range 256 {
			run, size := rs>>4, rs&15
			want := size >= 1 && size <= 10 || rs == 0x00 || rs == 0xf0
			if seen[uint8(rs)] != want {
				t.Errorf("%s: symbol %d/%d coded %v", name, run, size, seen[uint8(rs)])
			}
		}
	}
}

// noisy420 is a w×h 4:2:0 image of noise (amplitude a) on gradients.
func noisy420(w, h, a int, seed uint64) *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	r := rand.New(rand.NewPCG(seed, 1))
	for y := range h {
		for x := range w {
			m.Y[y*m.YStride+x] = uint8(min(255, x*200/w+y*40/h+r.IntN(a+1)))
		}
	}
	for i := range m.Cb {
		m.Cb[i] = uint8(100 + i%50 + r.IntN(a/2+1))
		m.Cr[i] = uint8(150 - i%40 + r.IntN(a/2+1))
	}
	return m
}

// psnr is the PSNR of b's planes against a's, in dB.
func psnr(a, b *image.YCbCr) float64 {
	var sum, n float64
	w, h := a.Rect.Dx(), a.Rect.Dy()
	for y := range h {
		for x := range w {
			ai, bi := a.YOffset(x, y), b.YOffset(x, y)
			ci, di := a.COffset(x, y), b.COffset(x, y)
			for _, d := range []float64{
				float64(a.Y[ai]) - float64(b.Y[bi]),
				float64(a.Cb[ci]) - float64(b.Cb[di]),
				float64(a.Cr[ci]) - float64(b.Cr[di]),
			} {
				sum += d * d
				n++
			}
		}
	}
	if sum == 0 {
		return 99
	}
	return 10 * math.Log10(255*255*n/sum)
}

// TestAgainstImageJPEG encodes images of sizes that do and do not fill
// whole MCUs, at several qualities, and decodes them with image/jpeg: the
// result must be a 4:2:0 image of the same size, as close to the source
// as image/jpeg's own encoding at that quality (within 0.5 dB, or above
// 50 dB) and about as large (within 10%).
func TestAgainstImageJPEG(t *testing.T) {
	for _, size := range [][2]int{{1, 1}, {7, 9}, {16, 16}, {203, 157}, {640, 480}} {
		for _, q := range []int{10, 50, 85, 100} {
			src := noisy420(size[0], size[1], 20, uint64(q))
			ours, err := Encode(src, q)
			if err != nil {
				t.Fatal(err)
			}
			m, err := jpeg.Decode(bytes.NewReader(ours))
			if err != nil {
				t.Fatalf("%v q%d: image/jpeg: %v", size, q, err)
			}
			got, ok := m.(*image.YCbCr)
			if !ok || got.SubsampleRatio != image.YCbCrSubsampleRatio420 || got.Rect != src.Rect {
				t.Fatalf("%v q%d: decoded %T %v", size, q, m, m.Bounds())
			}
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: q}); err != nil {
				t.Fatal(err)
			}
			refLen := buf.Len()
			ref, err := jpeg.Decode(&buf)
			if err != nil {
				t.Fatal(err)
			}
			p, pref := psnr(src, got), psnr(src, ref.(*image.YCbCr))
			t.Logf("%v q%d: %d bytes, %.2f dB; image/jpeg %d bytes, %.2f dB", size, q, len(ours), p, refLen, pref)
			if p < min(pref-0.5, 50) {
				t.Errorf("%v q%d: PSNR %.2f dB, image/jpeg's %.2f dB", size, q, p, pref)
			}
			if size[0] >= 203 && math.Abs(float64(len(ours))/float64(refLen)-1) > 0.1 {
				t.Errorf("%v q%d: %d bytes, image/jpeg %d", size, q, len(ours), refLen)
			}
		}
	}
}

// TestEncodeSubimage encodes a part of a larger image, at odd offsets:
// the same samples as that part copied to its own image.
func TestEncodeSubimage(t *testing.T) {
	src := noisy420(300, 200, 30, 7)
	part := src.SubImage(image.Rect(34, 22, 251, 177)).(*image.YCbCr)
	whole := image.NewYCbCr(image.Rect(0, 0, 217, 155), image.YCbCrSubsampleRatio420)
	for y := range 155 {
		for x := range 217 {
			whole.Y[whole.YOffset(x, y)] = part.Y[part.YOffset(34+x, 22+y)]
			whole.Cb[whole.COffset(x, y)] = part.Cb[part.COffset(34+x, 22+y)]
			whole.Cr[whole.COffset(x, y)] = part.Cr[part.COffset(34+x, 22+y)]
		}
	}
	a, err := Encode(part, 85)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(whole, 85)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("a subimage encodes unlike its copy")
	}
}

// TestEncodeRefuses checks the layouts Encode does not take.
func TestEncodeRefuses(t *testing.T) {
	for name, m := range map[string]*image.YCbCr{
		"4:4:4": image.NewYCbCr(image.Rect(0, 0, 8, 8), image.YCbCrSubsampleRatio444),
		"empty": image.NewYCbCr(image.Rect(0, 0, 0, 8), image.YCbCrSubsampleRatio420),
		"short": {Y: make([]byte, 10), Cb: make([]byte, 16), Cr: make([]byte, 16), YStride: 8, CStride: 4,
			SubsampleRatio: image.YCbCrSubsampleRatio420, Rect: image.Rect(0, 0, 8, 8)},
	} {
		if _, err := Encode(m, 85); err != ErrLayout {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func BenchmarkEncode1536(b *testing.B) {
	m := noisy420(1536, 1152, 20, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m, 85); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode1536ImageJPEG(b *testing.B) {
	m := noisy420(1536, 1152, 20, 1)
	b.ReportAllocs()
	for b.Loop() {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 85}); err != nil {
			b.Fatal(err)
		}
	}
}
