package imageprep

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
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
	return asRGBA(render(s, sb.Dx(), sb.Dy(), maxSide, 1)), asRGBA(render(f, cfg.Width, cfg.Height, maxSide, 1)), shift
}

// asRGBA returns m as an RGBA image with its origin at (0, 0).
func asRGBA(m image.Image) *image.RGBA {
	b := m.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, m, b.Min, draw.Src)
	return out
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

// TestYCbCrPipelineQuality checks the Y'CbCr pipeline (render of a decoded
// JPEG) is no further from the ideal image than the RGB one (renderRGBA):
// a smooth picture, drawn at the output size, is the ideal; each output is
// compared in RGB with 4:2:0 chroma, as a JPEG carries it (the RGB one's
// chroma averaged 2×2, as image/jpeg's encoder does).
func TestYCbCrPipelineQuality(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, smooth(1600, 1200), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	full, err := jpeg.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, maxSide := range []int{1200, 760, 380, 190} {
		y := render(full, 1600, 1200, maxSide, 1)
		if _, ok := y.(*image.YCbCr); !ok {
			t.Fatalf("render gave %T, want *image.YCbCr", y)
		}
		rgb := renderRGBA(full, 1600, 1200, maxSide, 1)
		ideal := smooth(rgb.Rect.Dx(), rgb.Rect.Dy())
		dbY, dbRGB := psnrRGBA(ideal, asRGBA(y)), psnrRGBA(ideal, asRGBA(to420(rgb)))
		t.Logf("%d px: Y'CbCr pipeline %.1f dB, RGB pipeline %.1f dB from the ideal", maxSide, dbY, dbRGB)
		if dbY < dbRGB-1 {
			t.Errorf("%d px: Y'CbCr pipeline %.1f dB, RGB %.1f dB", maxSide, dbY, dbRGB)
		}
	}
}

// to420 converts m to Y'CbCr 4:2:0, each chroma sample the mean of 2×2.
func to420(m *image.RGBA) *image.YCbCr {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := image.NewYCbCr(m.Rect, image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			c := m.RGBAAt(x, y)
			out.Y[out.YOffset(x, y)], _, _ = color.RGBToYCbCr(c.R, c.G, c.B)
		}
	}
	for cy := range (h + 1) / 2 {
		for cx := range (w + 1) / 2 {
			var cb, cr, n int
			for _, d := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
				x, y := min(2*cx+d[0], w-1), min(2*cy+d[1], h-1)
				c := m.RGBAAt(x, y)
				_, b, r := color.RGBToYCbCr(c.R, c.G, c.B)
				cb, cr, n = cb+int(b), cr+int(r), n+1
			}
			i := cy*out.CStride + cx
			out.Cb[i], out.Cr[i] = uint8((cb+n/2)/n), uint8((cr+n/2)/n)
		}
	}
	return out
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
