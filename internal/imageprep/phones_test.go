package imageprep_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/imageprep/internal/wasmdec"
)

// requireQuadrants asserts m shows quadrants(w, h) upright: red and green on
// top, blue and white below, within the tolerance of a lossy codec.
func requireQuadrants(t *testing.T, m image.Image, w, h int) {
	t.Helper()
	requireColor(t, m, w/4, h/4, red, 48)
	requireColor(t, m, 3*w/4, h/4, green, 48)
	requireColor(t, m, w/4, 3*h/4, blue, 48)
	requireColor(t, m, 3*w/4, 3*h/4, white, 48)
}

// TestPreparePhoneFormats decodes HEIC and AVIF files made by libheif and
// libavif, stored turned or mirrored in each of the ways a file can say so,
// and checks each comes out as an upright JPEG of the displayed size.
func TestPreparePhoneFormats(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file   string
		w, h   int
		reason string
	}{
		{"quadrants.heic", 256, 128, "heic not accepted"},
		{"quadrants-exif6.heic", 256, 128, "exif orientation 6"},      // EXIF only: heif-enc copies it
		{"quadrants-irot3.heic", 256, 128, "heic not accepted"},       // irot only: libheif turns it
		{"quadrants-irot3-exif6.heic", 256, 128, "heic not accepted"}, // both, as iPhones write: turned once
		{"quadrants.avif", 64, 32, "avif not accepted"},               // upright
		{"quadrants-10bit.avif", 64, 32, "avif not accepted"},         // 10 bits: converted to RGBA64 in the module
		{"quadrants-bt709.avif", 64, 32, "avif not accepted"},         // BT.709, limited range: converted to RGBA
		{"quadrants-irot3.avif", 64, 32, "exif orientation 6"},        // irot: turned here
		{"quadrants-imir1.avif", 64, 32, "exif orientation 2"},        // imir: mirrored here
		{"quadrants-progressive.jpg", 64, 32, ""},                     // a progressive JPEG passes
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			in := testdata(t, tc.file)
			p, err := imageprep.Prepare(in, imageprep.Limits{})
			require.NoError(t, err)
			require.Equal(t, [2]int{tc.w, tc.h}, [2]int{p.Width, p.Height})
			if tc.reason == "" {
				require.False(t, p.Converted)
				requireQuadrants(t, decode(t, p.Data, p.MediaType, tc.w, tc.h), tc.w, tc.h)
				return
			}
			require.True(t, p.Converted)
			require.Contains(t, p.Reason, tc.reason)
			requireQuadrants(t, decode(t, p.Data, "image/jpeg", tc.w, tc.h), tc.w, tc.h)
		})
	}
}

// gradientOff counts the pixels of m more than tol off the gradient of
// testdata/gradient.py (red across, green down, blue 128).
func gradientOff(m image.Image, tol int) int {
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	off := 0
	for y := range h {
		for x := range w {
			got := color.RGBAModel.Convert(m.At(x, y)).(color.RGBA)
			want := [3]int{x * 255 / w, y * 255 / h, 128}
			for i, v := range []uint8{got.R, got.G, got.B} {
				if max(int(v)-want[i], want[i]-int(v)) > tol {
					off++
					break
				}
			}
		}
	}
	return off
}

// TestNarrowHEIC decodes narrow HEICs made by heif-enc, gradients whose
// planes have rows narrower than libheif's row stride (64 px wide, and
// either side of 96 px in 4:2:0 and of 48 px in 4:4:4): each comes out right
// to the last pixel, from the decoder and through Prepare.
func TestNarrowHEIC(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file string
		w    int
	}{
		{"gradient-64x40.heic", 64},
		{"gradient-96x40.heic", 96},
		{"gradient-97x40.heic", 97},
		{"gradient444-48x40.heic", 48},
		{"gradient444-49x40.heic", 49},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			in := testdata(t, tc.file)
			m, err := wasmdec.HEIC(context.Background(), in, wasmdec.Limits{Memory: 64 << 20, Pixels: 1e6})
			require.NoError(t, err)
			require.Equal(t, image.Rect(0, 0, tc.w, 40), m.Bounds())
			require.Zero(t, gradientOff(m, 32))

			p, err := imageprep.Prepare(in, imageprep.Limits{})
			require.NoError(t, err)
			require.Zero(t, gradientOff(decode(t, p.Data, "image/jpeg", tc.w, 40), 32))
		})
	}
}

// TestPrepareTwelveMegapixels prepares 12 MP photos, a baseline JPEG (made
// here), a progressive one (testdata) with EXIF orientation 6, and a HEIC:
// each gives a JPEG of 1536 px on its long side, the right way up.
func TestPrepareTwelveMegapixels(t *testing.T) {
	t.Parallel()
	baseline := encodeJPEG(t, quadrants(4000, 3000), 90)
	progressive := testdata(t, "photo12-progressive.jpg")
	cases := []struct {
		name   string
		in     []byte
		w, h   int
		colors bool
	}{
		{"baseline", baseline, 1536, 1152, true},
		{"progressive exif 6", withOrientation(progressive, 6), 1152, 1536, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := imageprep.Prepare(tc.in, imageprep.Limits{})
			require.NoError(t, err)
			require.True(t, p.Converted)
			m := decode(t, p.Data, "image/jpeg", tc.w, tc.h)
			if tc.colors {
				requireQuadrants(t, m, tc.w, tc.h)
			}
		})
	}
	// The HEIC and the progressive JPEG are one picture: what each gives
	// must look alike (a decoder reading planes with a wrong stride would
	// shear it). The 12 MP AVIF takes seconds to decode: it is left to the
	// benchmarks.
	ref, err := imageprep.Prepare(progressive, imageprep.Limits{})
	require.NoError(t, err)
	refImg := decode(t, ref.Data, "image/jpeg", 1536, 1152)
	for _, f := range []string{"photo12.heic"} {
		p, err := imageprep.Prepare(testdata(t, f), imageprep.Limits{})
		require.NoError(t, err)
		db := psnr(refImg, decode(t, p.Data, "image/jpeg", 1536, 1152))
		t.Logf("%s against the JPEG: PSNR %.1f dB", f, db)
		require.Greater(t, db, 30.0, f)
	}
	// EXIF 6 on the quadrants: the top left (red) ends at the top right.
	p, err := imageprep.Prepare(withOrientation(baseline, 6), imageprep.Limits{})
	require.NoError(t, err)
	m := decode(t, p.Data, "image/jpeg", 1152, 1536)
	requireColor(t, m, 1152*3/4, 1536/4, red, 48)
	requireColor(t, m, 1152/4, 1536/4, blue, 48)
}

// withISPE returns the HEIF file data with every ispe (image size) property
// claiming w×h.
func withISPE(data []byte, w, h uint32) []byte {
	out := bytes.Clone(data)
	for i := 0; ; {
		j := bytes.Index(out[i:], []byte("ispe"))
		if j < 0 || i+j+16 > len(out) {
			return out
		}
		at := i + j + 8 // after type and version/flags
		binary.BigEndian.PutUint32(out[at:], w)
		binary.BigEndian.PutUint32(out[at+4:], h)
		i = at + 8
	}
}

// TestPrepareDecodeBytes checks the bomb guard counts the bytes an image
// decodes to, not only its pixels: each case is within MaxPixels and
// refused, as a permanent error naming the size and the limit.
func TestPrepareDecodeBytes(t *testing.T) {
	t.Parallel()
	progressive := jpegFrameHeader(0xc2, 8, 8000, 6000)
	cases := []struct {
		name     string
		in       []byte
		limits   imageprep.Limits
		contains string
	}{
		{"16-bit png 9999x9999", pngHeaderOf(9999, 9999, 16, 6), imageprep.Limits{}, "PNG of 9999x9999 would decode to 762 MiB (8 B/px), limit 512 MiB"},
		{"8-bit png under a small budget", pngHeader(4000, 3000), imageprep.Limits{MaxDecodeBytes: 32 << 20}, "limit 32 MiB"},
		{"progressive jpeg 48 MP", progressive, imageprep.Limits{}, "progressive coefficients"},
		{"heic 9000x9000", withISPE(testdata(t, "quadrants.heic"), 9000, 9000), imageprep.Limits{}, "HEIC of 9000x9000 would decode to"},
		{"avif 8000x8000", withISPE(testdata(t, "quadrants.avif"), 8000, 8000), imageprep.Limits{}, "AVIF of 8000x8000 would decode to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := imageprep.Prepare(tc.in, tc.limits)
			require.ErrorIs(t, err, imageprep.ErrTooLarge)
			require.True(t, fault.Is(err, fault.KindPermanent), "must be permanent: %v", err)
			require.Contains(t, err.Error(), tc.contains)
		})
	}
	// A baseline JPEG of the same size is decoded at 1/4 and fits.
	_, err := imageprep.Prepare(jpegFrameHeader(0xc0, 8, 8000, 6000), imageprep.Limits{})
	require.NotErrorIs(t, err, imageprep.ErrTooLarge)
}

// TestPrepareSixteenBitPNGHeap measures the bytes allocated while a 16-bit
// PNG within the budget is prepared: no more than what it decodes to plus a
// quarter (the whole image is never copied to 8-bit RGBA). Not parallel: the
// allocation count is process-wide.
func TestPrepareSixteenBitPNGHeap(t *testing.T) {
	const w, h = 2000, 1500
	m := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetNRGBA64(x, y, color.NRGBA64{uint16(x * 32), uint16(y * 43), 0x8000, 0xffff})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, m))
	in := buf.Bytes()
	m = nil
	decoded := uint64(w * h * 8)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := imageprep.Prepare(in, imageprep.Limits{MaxSide: 256})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Equal(t, 256, p.Width)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("16-bit PNG %dx%d decodes to %d MB; preparing it allocated %d MB", w, h, decoded>>20, allocated>>20)
	require.Less(t, allocated, decoded+decoded/4)
}

// psnr returns the peak signal-to-noise ratio of b against a (same size),
// over the R, G and B channels, in dB.
func psnr(a, b image.Image) float64 {
	var sum float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := color.RGBAModel.Convert(a.At(x, y)).(color.RGBA)
			q := color.RGBAModel.Convert(b.At(x, y)).(color.RGBA)
			for _, d := range []float64{float64(p.R) - float64(q.R), float64(p.G) - float64(q.G), float64(p.B) - float64(q.B)} {
				sum += d * d
			}
		}
	}
	mse := sum / float64(3*r.Dx()*r.Dy())
	if mse == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/mse)
}

// TestMediaTypes checks every media type listed as decodable names a format
// Prepare decodes: a fixture of that format is prepared.
func TestMediaTypes(t *testing.T) {
	t.Parallel()
	got := imageprep.MediaTypes()
	for _, mt := range []string{"image/heic", "image/heif", "image/avif", "image/jpeg", "image/tiff", "image/bmp"} {
		require.Contains(t, got, mt)
	}
	got[0] = "changed"
	require.Equal(t, "image/jpeg", imageprep.MediaTypes()[0], "a copy each call")
}
