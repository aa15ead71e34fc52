package imageprep

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// psnrRGBA is the PSNR of b against a (same size) over R, G and B, in dB.
func psnrRGBA(a, b *image.RGBA) float64 {
	var sum float64
	for i := 0; i+3 < len(a.Pix); i += 4 {
		for c := range 3 {
			d := float64(a.Pix[i+c]) - float64(b.Pix[i+c])
			sum += d * d
		}
	}
	mse := sum / float64(3*len(a.Pix)/4)
	if mse == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/mse)
}

// scaledAndFull renders a JPEG both ways: decoded at the reduced scale
// Prepare picks, and decoded at full size; both finished by the same box
// filter and Catmull-Rom to maxSide.
func scaledAndFull(tb testing.TB, data []byte, maxSide int) (scaledOut, fullOut *image.RGBA, shift uint) {
	tb.Helper()
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	shift = jpegShift(cfg.Width, cfg.Height, maxSide)
	s, err := decodeJPEG(data, shift)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	sb := s.Bounds()
	return render(s, sb.Dx(), sb.Dy(), maxSide, 1), render(f, cfg.Width, cfg.Height, maxSide, 1), shift
}

// TestJPEGScaledQuality checks decoding at a reduced DCT scale gives what a
// full decode gives, downscaled with the same filter, for a baseline and a
// progressive JPEG and each scale, each finished by a small downscale as in
// use: within 45 dB, which no eye tells apart. (Decoding a 4:2:0 JPEG's
// chroma at the luma's scale instead of twice it gives 34 dB at 1/8.)
func TestJPEGScaledQuality(t *testing.T) {
	t.Parallel()
	prog, err := os.ReadFile(filepath.Join("testdata", "photo12-progressive.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, smooth(1600, 1200), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		data    []byte
		maxSide int
		shift   uint
	}{
		{"baseline 1/2", buf.Bytes(), 760, 1},
		{"baseline 1/4", buf.Bytes(), 380, 2},
		{"baseline 1/8", buf.Bytes(), 190, 3},
		{"progressive 1/2", prog, 1536, 1},
	} {
		s, f, shift := scaledAndFull(t, tc.data, tc.maxSide)
		if shift != tc.shift {
			t.Fatalf("%s: shift %d, want %d", tc.name, shift, tc.shift)
		}
		db := psnrRGBA(f, s)
		t.Logf("%s: PSNR %.1f dB against a full decode", tc.name, db)
		if db < 45 {
			t.Errorf("%s: PSNR %.1f dB", tc.name, db)
		}
	}
}

// BenchmarkJPEGScaledQuality reports, for the 12 MP baseline and progressive
// JPEGs, the PSNR of the reduced-scale path against a full decode finished
// with the same filter ("dB"), and times the reduced-scale decode alone.
func BenchmarkJPEGScaledQuality(b *testing.B) {
	prog, err := os.ReadFile(filepath.Join("testdata", "photo12-progressive.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, smooth(4000, 3000), &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{{"baseline", buf.Bytes()}, {"progressive", prog}} {
		b.Run(tc.name, func(b *testing.B) {
			s, f, shift := scaledAndFull(b, tc.data, DefaultMaxSide)
			b.ReportMetric(psnrRGBA(f, s), "dB")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeJPEG(tc.data, shift); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
