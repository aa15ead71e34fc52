package imageprep_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// openAI is the Accept list of a provider that also takes WebP and GIF.
var openAI = []string{"image/jpeg", "image/png", "image/webp", "image/gif"}

func TestPrepareOrientation(t *testing.T) {
	t.Parallel()
	src := encodeJPEG(t, quadrants(40, 20), 95)
	type grid [2][2]color.RGBA // [row][col] of the upright output
	cases := []struct {
		name string
		seg  []byte
		w, h int
		want grid
	}{
		{"1 upright", exifSegment(1, binary.BigEndian, false), 40, 20, grid{{red, green}, {blue, white}}},
		{"2 flip horizontal", exifSegment(2, binary.BigEndian, false), 40, 20, grid{{green, red}, {white, blue}}},
		{"3 rotate 180", exifSegment(3, binary.BigEndian, false), 40, 20, grid{{white, blue}, {green, red}}},
		{"4 flip vertical", exifSegment(4, binary.BigEndian, false), 40, 20, grid{{blue, white}, {red, green}}},
		{"5 transpose", exifSegment(5, binary.BigEndian, false), 20, 40, grid{{red, blue}, {green, white}}},
		{"6 rotate 90 cw", exifSegment(6, binary.BigEndian, false), 20, 40, grid{{blue, red}, {white, green}}},
		{"7 transverse", exifSegment(7, binary.BigEndian, false), 20, 40, grid{{white, green}, {blue, red}}},
		{"8 rotate 270 cw", exifSegment(8, binary.BigEndian, false), 20, 40, grid{{green, white}, {red, blue}}},
		{"6 little endian", exifSegment(6, binary.LittleEndian, false), 20, 40, grid{{blue, red}, {white, green}}},
		{"6 as LONG", exifSegment(6, binary.LittleEndian, true), 20, 40, grid{{blue, red}, {white, green}}},
		{"no exif", nil, 40, 20, grid{{red, green}, {blue, white}}},
		{"orientation 9 is ignored", exifSegment(9, binary.BigEndian, false), 40, 20, grid{{red, green}, {blue, white}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := withSegment(src, tc.seg)
			p, err := imageprep.Prepare(in, imageprep.Limits{})
			require.NoError(t, err)
			upright := tc.w == 40 && tc.want[0][0] == red && tc.want[0][1] == green
			require.Equal(t, !upright, p.Converted, p.Reason)
			if upright {
				require.True(t, bytes.Equal(in, p.Data))
				require.Empty(t, p.Reason)
			} else {
				require.Contains(t, p.Reason, "exif orientation")
			}
			m := decode(t, p.Data, p.MediaType, tc.w, tc.h)
			for r := range 2 {
				for c := range 2 {
					x, y := tc.w/4+c*tc.w/2, tc.h/4+r*tc.h/2
					requireColor(t, m, x, y, tc.want[r][c], 40)
				}
			}
		})
	}
}

// The case the brief spells out: red left, blue right, orientation 6.
func TestPrepareOrientation6RedOnTop(t *testing.T) {
	t.Parallel()
	in := withOrientation(encodeJPEG(t, halves(40, 20), 95), 6)
	p, err := imageprep.Prepare(in, imageprep.Limits{})
	require.NoError(t, err)
	require.True(t, p.Converted)
	require.Equal(t, "exif orientation 6", p.Reason)
	require.Equal(t, "image/jpeg", p.MediaType)
	require.Equal(t, 20, p.Width)
	require.Equal(t, 40, p.Height)
	m := decode(t, p.Data, p.MediaType, 20, 40)
	for _, x := range []int{3, 10, 16} {
		requireColor(t, m, x, 8, red, 40)
		requireColor(t, m, x, 31, blue, 40)
	}
}

func TestPrepareDownscale(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		in     []byte
		limits imageprep.Limits
		w, h   int
		reason string
		// leftColor and rightColor are expected near the left and right
		// edges at mid height or, when vertical, near the top and bottom
		// edges at mid width.
		leftColor, rightColor color.RGBA
		vertical              bool
	}{
		{
			name: "6000x4000 jpeg to 1536x1024", in: encodeJPEG(t, gradient(6000, 4000), 80),
			w: 1536, h: 1024, reason: "6000x4000 over 1536 px",
			leftColor: color.RGBA{0, 0x80, 0x80, 0xff}, rightColor: color.RGBA{0xff, 0x80, 0x80, 0xff},
		},
		{
			name: "portrait png to max side 300", in: encodePNG(t, halves(400, 1000)),
			limits: imageprep.Limits{MaxSide: 300}, w: 120, h: 300, reason: "400x1000 over 300 px",
			leftColor: red, rightColor: blue,
		},
		{
			name: "odd factor with orientation", in: withOrientation(encodeJPEG(t, halves(1001, 333), 95), 6),
			limits: imageprep.Limits{MaxSide: 100}, w: 33, h: 100, reason: "1001x333 over 100 px; exif orientation 6",
			leftColor: red, rightColor: blue, vertical: true,
		},
		{
			name: "transparent png is flattened on white", in: encodePNG(t, transparentRight(3000, 1000)),
			w: 1536, h: 512, reason: "3000x1000 over 1536 px",
			leftColor: red, rightColor: white,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := imageprep.Prepare(tc.in, tc.limits)
			require.NoError(t, err)
			require.True(t, p.Converted)
			require.Equal(t, tc.reason, p.Reason)
			require.Equal(t, tc.w, p.Width)
			require.Equal(t, tc.h, p.Height)
			m := decode(t, p.Data, "image/jpeg", tc.w, tc.h)
			if tc.vertical {
				requireColor(t, m, tc.w/2, 5, tc.leftColor, 40)
				requireColor(t, m, tc.w/2, tc.h-6, tc.rightColor, 40)
				return
			}
			requireColor(t, m, 2, tc.h/2, tc.leftColor, 40)
			requireColor(t, m, tc.w-3, tc.h/2, tc.rightColor, 40)
		})
	}
}

// transparentRight is a w×h image: opaque red on the left, fully
// transparent on the right.
func transparentRight(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w / 2 {
			m.SetNRGBA(x, y, color.NRGBA{0xff, 0, 0, 0xff})
		}
	}
	return m
}

func TestPreparePassThrough(t *testing.T) {
	t.Parallel()
	photo := encodeJPEG(t, noisy(1024, 768, 28, 1), 88)
	t.Logf("noisy 1024x768 JPEG: %d bytes", len(photo))
	require.Greater(t, len(photo), 200<<10)
	require.Less(t, len(photo), 600<<10)
	cases := []struct {
		name      string
		in        []byte
		limits    imageprep.Limits
		mediaType string
		w, h      int
	}{
		{"noisy 1024x768 jpeg", photo, imageprep.Limits{}, "image/jpeg", 1024, 768},
		{"jpeg with exif orientation 1", withOrientation(photo, 1), imageprep.Limits{}, "image/jpeg", 1024, 768},
		{"jpeg exactly max side", photo, imageprep.Limits{MaxSide: 1024}, "image/jpeg", 1024, 768},
		{"jpeg exactly max bytes", photo, imageprep.Limits{MaxBytes: int64(len(photo))}, "image/jpeg", 1024, 768},
		{"png", encodePNG(t, halves(64, 32)), imageprep.Limits{}, "image/png", 64, 32},
		{"webp lossless accepted", testdata(t, "halves-lossless.webp"), imageprep.Limits{Accept: openAI}, "image/webp", 40, 20},
		{"webp lossy accepted", testdata(t, "halves-lossy.webp"), imageprep.Limits{Accept: openAI}, "image/webp", 40, 20},
		{"still gif accepted", stillGIF(t, 30, 20), imageprep.Limits{Accept: openAI}, "image/gif", 30, 20},
		{"accept matching ignores case and jpg alias", photo, imageprep.Limits{Accept: []string{" Image/JPG "}}, "image/jpeg", 1024, 768},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := imageprep.Prepare(tc.in, tc.limits)
			require.NoError(t, err)
			require.False(t, p.Converted, p.Reason)
			require.Empty(t, p.Reason)
			require.True(t, bytes.Equal(tc.in, p.Data), "data must be the input byte for byte")
			require.Equal(t, tc.mediaType, p.MediaType)
			require.Equal(t, tc.w, p.Width)
			require.Equal(t, tc.h, p.Height)
		})
	}
}

func TestPrepareConvert(t *testing.T) {
	t.Parallel()
	bmpData := func() []byte {
		var buf bytes.Buffer
		require.NoError(t, bmp.Encode(&buf, halves(40, 20)))
		return buf.Bytes()
	}()
	tiffData := func(orient int) []byte {
		var buf bytes.Buffer
		require.NoError(t, tiff.Encode(&buf, halves(40, 20), nil))
		b := buf.Bytes()
		if orient == 0 {
			return b
		}
		return addTIFFOrientation(t, b, orient)
	}
	photo := encodeJPEG(t, noisy(320, 240, 24, 2), 90)
	cases := []struct {
		name   string
		in     []byte
		limits imageprep.Limits
		reason string
		w, h   int
		// left and right are the expected colours at mid height, near
		// each side; top and bottom replace them for rotated outputs.
		left, right color.RGBA
	}{
		{"webp lossless not accepted", testdata(t, "halves-lossless.webp"), imageprep.Limits{}, "webp not accepted", 40, 20, red, blue},
		{"webp lossy not accepted", testdata(t, "halves-lossy.webp"), imageprep.Limits{}, "webp not accepted", 40, 20, red, blue},
		{"webp lossless alpha on white", testdata(t, "alpha-lossless.webp"), imageprep.Limits{}, "webp not accepted", 40, 20, red, white},
		{"webp lossy alpha on white", testdata(t, "alpha-lossy.webp"), imageprep.Limits{}, "webp not accepted", 40, 20, red, white},
		{"gif first frame", twoFrameGIF(t, 40, 20), imageprep.Limits{}, "gif not accepted", 40, 20, red, red},
		{"animated gif accepted", twoFrameGIF(t, 40, 20), imageprep.Limits{Accept: openAI}, "animated gif", 40, 20, red, red},
		{"gif with transparency and offset frame", offsetGIF(t), imageprep.Limits{}, "gif not accepted", 40, 20, white, red},
		{"bmp", bmpData, imageprep.Limits{Accept: openAI}, "bmp not accepted", 40, 20, red, blue},
		{"tiff", tiffData(0), imageprep.Limits{}, "tiff not accepted", 40, 20, red, blue},
		{"tiff orientation 3", tiffData(3), imageprep.Limits{}, "tiff not accepted; exif orientation 3", 40, 20, blue, red},
		{"png not accepted", encodePNG(t, transparentRight(40, 20)), imageprep.Limits{Accept: []string{"image/jpeg"}}, "png not accepted", 40, 20, red, white},
		{"png with eXIf orientation 2", pngWithOrientation(t, halves(40, 20), 2), imageprep.Limits{}, "exif orientation 2", 40, 20, blue, red},
		{"jpeg over max bytes", photo, imageprep.Limits{MaxBytes: 1000}, "", 320, 240, color.RGBA{}, color.RGBA{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := imageprep.Prepare(tc.in, tc.limits)
			require.NoError(t, err)
			require.True(t, p.Converted)
			require.Equal(t, "image/jpeg", p.MediaType)
			if tc.reason != "" {
				require.Equal(t, tc.reason, p.Reason)
			} else {
				require.Contains(t, p.Reason, "bytes over 1000")
			}
			m := decode(t, p.Data, p.MediaType, tc.w, tc.h)
			if tc.left != (color.RGBA{}) {
				requireColor(t, m, 3, tc.h/2, tc.left, 40)
				requireColor(t, m, tc.w-4, tc.h/2, tc.right, 40)
			}
		})
	}
}

// pngWithOrientation encodes m as PNG with an eXIf chunk before IDAT.
func pngWithOrientation(t *testing.T, m image.Image, o int) []byte {
	t.Helper()
	p := encodePNG(t, m)
	seg := exifSegment(o, binary.BigEndian, false)
	tiffBytes := seg[4+6:] // drop marker, length and "Exif\0\0"
	ihdrEnd := 8 + 12 + 13
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, pngChunk("eXIf", tiffBytes)...)
	return append(out, p[ihdrEnd:]...)
}

// addTIFFOrientation rewrites the x/image/tiff output b with an orientation
// tag added to its IFD0 (written at the end of the file).
func addTIFFOrientation(t *testing.T, b []byte, o int) []byte {
	t.Helper()
	bo := byteOrder(binary.LittleEndian)
	if string(b[:2]) == "MM" {
		bo = binary.BigEndian
	}
	off := bo.Uint32(b[4:])
	n := int(bo.Uint16(b[off:]))
	entries := b[off+2 : int(off)+2+12*n]
	// Entries stay sorted: orientation (0x0112) goes after 0x0106.
	var ifd []byte
	ifd = bo.AppendUint16(ifd, uint16(n+1))
	added := false
	for i := range n {
		e := entries[12*i : 12*i+12]
		if !added && bo.Uint16(e) > 0x0112 {
			ifd = append(ifd, orientationEntry(bo, o)...)
			added = true
		}
		ifd = append(ifd, e...)
	}
	if !added {
		ifd = append(ifd, orientationEntry(bo, o)...)
	}
	ifd = bo.AppendUint32(ifd, 0)
	out := append([]byte{}, b...)
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	bo.PutUint32(out[4:], uint32(len(out)))
	return append(out, ifd...)
}

func orientationEntry(bo byteOrder, o int) []byte {
	e := bo.AppendUint16(nil, 0x0112)
	e = bo.AppendUint16(e, 3)
	e = bo.AppendUint32(e, 1)
	e = bo.AppendUint16(e, uint16(o))
	return append(e, 0, 0)
}

func TestPrepareErrors(t *testing.T) {
	t.Parallel()
	photo := encodeJPEG(t, noisy(400, 300, 24, 3), 90)
	garbage := make([]byte, 4096)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(garbage)
	cases := []struct {
		name     string
		in       []byte
		limits   imageprep.Limits
		sentinel error
		contains string
	}{
		{"png bomb 100000x100000", pngHeader(100000, 100000), imageprep.Limits{}, imageprep.ErrTooLarge, "PNG header says 100000x100000"},
		{"jpeg bomb 65000x65000", jpegHeader(65000, 65000), imageprep.Limits{}, imageprep.ErrTooLarge, "65000x65000"},
		{"gif bomb 65535x65535", gifHeader(65535, 65535), imageprep.Limits{}, imageprep.ErrTooLarge, "65535x65535"},
		{"webp bomb 16384x16384", webpHeader(16384, 16384), imageprep.Limits{}, imageprep.ErrTooLarge, "16384x16384"},
		{"bmp bomb 30000x30000", bmpHeader(30000, 30000), imageprep.Limits{}, imageprep.ErrTooLarge, "30000x30000"},
		{"over a custom max pixels", photo, imageprep.Limits{MaxPixels: 400*300 - 1}, imageprep.ErrTooLarge, "400x300"},
		{"heic without boxes", isoHeader("heic", "mif1", "heic"), imageprep.Limits{}, imageprep.ErrCorrupt, "HEIC header: no meta box"},
		{"heif by compatible brand", isoHeader("mif1", "heic"), imageprep.Limits{}, imageprep.ErrCorrupt, "HEIC header"},
		{"avif without boxes", isoHeader("avif", "mif1", "miaf"), imageprep.Limits{}, imageprep.ErrCorrupt, "AVIF header: no meta box"},
		{"mp4 video", isoHeader("isom", "mp41"), imageprep.Limits{}, imageprep.ErrUnsupported, `brand "isom"`},
		{"jpeg xl", []byte("\xff\x0a\x00\x00\x00\x00\x00\x00"), imageprep.Limits{}, imageprep.ErrUnsupported, "JPEG XL"},
		{"12-bit jpeg", jpegFrameHeader(0xc1, 12, 64, 64), imageprep.Limits{}, imageprep.ErrUnsupported, "12-bit JPEG is not supported"},
		{"arithmetic-coded jpeg", jpegFrameHeader(0xc9, 8, 64, 64), imageprep.Limits{}, imageprep.ErrUnsupported, "arithmetic-coded JPEG is not supported"},
		{"lossless jpeg", jpegFrameHeader(0xc3, 8, 64, 64), imageprep.Limits{}, imageprep.ErrUnsupported, "lossless JPEG is not supported"},
		{"16-bit bmp", bmp16(), imageprep.Limits{}, imageprep.ErrUnsupported, "BMP header"},
		{"garbage", garbage, imageprep.Limits{}, imageprep.ErrCorrupt, "unrecognised format"},
		{"empty", nil, imageprep.Limits{}, imageprep.ErrCorrupt, "empty"},
		{"pdf", []byte("%PDF-1.7\n..."), imageprep.Limits{}, imageprep.ErrCorrupt, "PDF document"},
		{"jpeg cut in its header", photo[:40], imageprep.Limits{}, imageprep.ErrCorrupt, "JPEG header"},
		{"truncated jpeg passing its header", photo[:len(photo)/2], imageprep.Limits{}, imageprep.ErrCorrupt, "decode JPEG"},
		{"truncated jpeg to downscale", photo[:len(photo)/2], imageprep.Limits{MaxSide: 100}, imageprep.ErrCorrupt, "decode JPEG"},
		{"truncated png", encodePNG(t, noisy(64, 64, 50, 4))[:2000], imageprep.Limits{}, imageprep.ErrCorrupt, "decode PNG"},
		{"png header only", pngHeader(10, 10), imageprep.Limits{}, imageprep.ErrCorrupt, "decode PNG"},
		{"truncated webp", testdata(t, "halves-lossy.webp")[:60], imageprep.Limits{Accept: openAI}, imageprep.ErrCorrupt, "WebP"},
		{"png zero width", pngHeader(0, 10), imageprep.Limits{}, imageprep.ErrCorrupt, "PNG header"},
		{"too many scans", manyScans(t, 500), imageprep.Limits{MaxSide: 8}, imageprep.ErrTooLarge, "scans"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := imageprep.Prepare(tc.in, tc.limits)
			require.Error(t, err)
			require.Zero(t, p)
			require.ErrorIs(t, err, tc.sentinel)
			for _, other := range []error{imageprep.ErrTooLarge, imageprep.ErrUnsupported, imageprep.ErrCorrupt} {
				if other != tc.sentinel {
					require.False(t, errors.Is(err, other), "wraps %v too", other)
				}
			}
			require.True(t, fault.Is(err, fault.KindPermanent), "must be permanent: %v", err)
			require.Contains(t, err.Error(), tc.contains)
		})
	}
}

// bmp16 is a BMP header with 16 bits per pixel, which x/image/bmp does not
// read.
func bmp16() []byte {
	b := bmpHeader(4, 4)
	binary.LittleEndian.PutUint16(b[28:], 16)
	return b
}

// manyScans is a small JPEG followed by n empty scans, a CPU bomb for a
// progressive decoder; Prepare refuses it before decoding.
func manyScans(tb testing.TB, n int) []byte {
	tb.Helper()
	j := encodeJPEG(tb, halves(16, 16), 90)
	body := j[:len(j)-2] // drop EOI
	sos := []byte{0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0}
	for range n {
		body = append(body, sos...)
		body = append(body, 0x00)
	}
	return append(body, 0xff, 0xd9)
}

// TestPrepareBombAllocates checks a decompression bomb is refused before any
// pixel buffer exists. It is not parallel on purpose: the allocation count
// is process-wide, and sequential tests run before the parallel ones resume.
func TestPrepareBombAllocates(t *testing.T) {
	bomb := pngHeader(100000, 100000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_, err := imageprep.Prepare(bomb, imageprep.Limits{})
		require.ErrorIs(t, err, imageprep.ErrTooLarge)
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / 10
	t.Logf("bomb refusal allocates %d bytes per call", perCall)
	require.Less(t, perCall, uint64(256<<10))
}

func TestLimitsDefaults(t *testing.T) {
	t.Parallel()
	// 2000 px is over the default MaxSide of 1536.
	in := encodeJPEG(t, gradient(2000, 1000), 80)
	p, err := imageprep.Prepare(in, imageprep.Limits{MaxSide: -1, MaxPixels: -1, MaxBytes: -1, JPEGQuality: 500})
	require.NoError(t, err)
	require.Equal(t, 1536, p.Width)
	require.Equal(t, 768, p.Height)
	// 20 MiB is the default MaxBytes, 85 the default quality.
	q85, err := imageprep.Prepare(in, imageprep.Limits{})
	require.NoError(t, err)
	q50, err := imageprep.Prepare(in, imageprep.Limits{JPEGQuality: 50})
	require.NoError(t, err)
	require.Less(t, len(q50.Data), len(q85.Data))
	require.Greater(t, len(p.Data), len(q85.Data), "quality clamped to 100")
}
